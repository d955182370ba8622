-- Every listing of attempts filters by message or by endpoint, and each has
-- its own index; the (app_id, id) index served none, and cost a b-tree insert
-- per attempt.
DROP INDEX IF EXISTS attempts_app_id;
