"""The regression suite of real products' reported routing bugs (``chatlab bugs``).

:mod:`chatlab.bugs.catalog` lists the bugs — each a scenario, a buggy variant reproducing
the report (``sim/variants.py``, or the lab without one of its rules), the bound that
detects it and the lab's behaviour that must pass the same bound; :mod:`chatlab.bugs.runner`
runs them in the simulation and on the real database (Locust), and says for each whether
the variant reproduced the bug and the lab was free of it.
"""

from chatlab.bugs.catalog import BUGS, Bug, bug_scenarios
from chatlab.bugs.runner import Outcome, Row, run_dbs, run_sim, run_sims

__all__ = ["BUGS", "Bug", "Outcome", "Row", "bug_scenarios", "run_dbs", "run_sim", "run_sims"]
