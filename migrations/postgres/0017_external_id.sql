-- Stable identity (#17): a directory user is matched by the directory's own immutable id
-- (AD objectGUID, OpenLDAP entryUUID), so a renamed account keeps its methods and history.
ALTER TABLE users ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX users_source_external_id ON users(source, external_id) WHERE external_id IS NOT NULL;
