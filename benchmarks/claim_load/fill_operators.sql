-- %(n)s online operators, one chat each (the benchmark's clients play the first of them).
SELECT min(create_operator('op' || g, 1, true)) FROM generate_series(1, %(n)s::bigint) g
