-- Wake-ups for a farm's nodes (LISTEN/NOTIFY; SQLite has one node and no
-- need). Sent when the change commits, so a node that hears one reads it.
--   vs_queue  a job became QUEUED: idle nodes claim
--   vs_jobs   a held job's status changed: "<node> <guid> <status>", for the
--             node running it (a Pause, Resume or Stop sent to another node)
--   vs_nodes  a node was enabled or disabled: its name
CREATE FUNCTION vs_notify_queue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vs_queue', '');
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_queued AFTER INSERT OR UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.status = 'QUEUED') EXECUTE FUNCTION vs_notify_queue();

CREATE FUNCTION vs_notify_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vs_jobs', OLD.node || ' ' || NEW.guid || ' ' || NEW.status);
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_commanded AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (OLD.lease_expires IS NOT NULL AND OLD.node IS NOT NULL
                       AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION vs_notify_job();

CREATE FUNCTION vs_notify_node() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vs_nodes', NEW.name);
    RETURN NULL;
END $$;

CREATE TRIGGER nodes_enabled AFTER UPDATE OF enabled ON nodes
    FOR EACH ROW WHEN (OLD.enabled IS DISTINCT FROM NEW.enabled)
    EXECUTE FUNCTION vs_notify_node();
