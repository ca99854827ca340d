"""SimPy model of real users, operators and the chat state machine, plus the shared vocabulary
(state machine, policies, event log) that the database side and the load test obey too."""
