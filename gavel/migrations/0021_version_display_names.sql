-- A pack version keeps the display name it was published with: versions are immutable
-- once published, but the name lived on the pack, and each publish overwrote it for
-- every earlier version (and for the groups applying them). The pack's list shows its
-- latest version's.

ALTER TABLE policy_pack_versions ADD COLUMN display_name text NOT NULL DEFAULT '';
UPDATE policy_pack_versions v SET display_name = p.display_name
FROM policy_packs p WHERE p.id = v.pack_id;
ALTER TABLE policy_packs DROP COLUMN display_name;
