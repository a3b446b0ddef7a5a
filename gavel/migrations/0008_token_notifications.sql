-- API processes cache authenticated tokens briefly; any change to a token or an org
-- (revocation, role change, deletion, rename) tells them to drop what they hold.
CREATE FUNCTION gavel_tokens_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gavel_tokens', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER tokens_changed AFTER UPDATE OR DELETE ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION gavel_tokens_changed();
CREATE TRIGGER orgs_changed AFTER UPDATE OF name OR DELETE ON orgs
    FOR EACH STATEMENT EXECUTE FUNCTION gavel_tokens_changed();
