SET session_replication_role = DEFAULT
