-- Fill-time only: skip the triggers (the filled rows are already in their final shape).
SET session_replication_role = replica
