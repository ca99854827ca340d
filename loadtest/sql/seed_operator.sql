-- One operator of a load-test run, created offline through the system's own function: its
-- Locust Operator user logs it in (set_operator_online) when its shift starts, so the
-- history's operator_online rows are the scenario's shifts.  In a fresh schema the ids
-- come out 1..n in creation order: the simulation's ids, so per-operator tables line up.
SELECT create_operator(%(name)s, %(max_chats)s, false)
