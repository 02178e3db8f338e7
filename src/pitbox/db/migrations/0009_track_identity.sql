-- Version 9: track identity from the data. A track is one circuit layout: its name, its configuration (the
-- layout: "Grand Prix", "Oval"; '' when the circuit has one) and its length. Sessions made from recordings or
-- by relay agents name the track; the server matches it by name + configuration (+ length within 1 %) or
-- creates it, so the name alone is no longer unique: two layouts, or a circuit rebuilt to another length, are
-- two tracks. Each lap keeps the length its own data measured, so a reference on another track is refused.
ALTER TABLE tracks
    ADD COLUMN configuration text NOT NULL DEFAULT '' CHECK (length(configuration) <= 200);

DROP INDEX tracks_name_key;
CREATE INDEX tracks_name_idx ON tracks (lower(name), lower(configuration));

ALTER TABLE laps ADD COLUMN length_m double precision CHECK (length_m > 0);
