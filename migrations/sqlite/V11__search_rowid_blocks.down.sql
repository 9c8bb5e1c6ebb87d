-- Reverts V11__search_rowid_blocks (SQLite): searches below V11 do not read the blocks.
DROP TABLE search_blocks;
