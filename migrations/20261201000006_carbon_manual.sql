-- The Carbon API manual's job: `description` becomes the JobQueue
-- Description; why a job failed or stopped moves to `failure` (reported
-- under <Failures>). The rest keeps what a JobQueue asked for beyond one
-- file to one folder.
ALTER TABLE jobs ADD COLUMN failure TEXT NOT NULL DEFAULT '';
UPDATE jobs SET failure = description, description = '' WHERE description <> '';

-- The request as submitted (canonical XML), for JobCommand Query.
ALTER TABLE jobs ADD COLUMN request_xml TEXT NOT NULL DEFAULT '';
-- MultiSource: the file the audio comes from (NULL: the source itself).
ALTER TABLE jobs ADD COLUMN audio_path TEXT;
-- MultiSource StreamType 1 for audio: encode no sound.
ALTER TABLE jobs ADD COLUMN no_audio INTEGER NOT NULL DEFAULT 0;
-- InOutPoints, in 27 MHz ticks (trim_out NULL: to the end).
ALTER TABLE jobs ADD COLUMN trim_in INTEGER;
ALTER TABLE jobs ADD COLUMN trim_out INTEGER;
-- Warnings kept from the request (settings it carried that are not
-- applied), as a JSON list, reported under <Failures><Warnings>.
ALTER TABLE jobs ADD COLUMN notes TEXT NOT NULL DEFAULT '[]';
-- Source PostconversionTasks/FileCopy_n, as JSON.
ALTER TABLE jobs ADD COLUMN source_copies TEXT NOT NULL DEFAULT '[]';

-- DestinationName, and the destination's FileCopy_n (JSON) and the copies
-- made (JSON list of paths).
ALTER TABLE destinations ADD COLUMN name TEXT;
ALTER TABLE destinations ADD COLUMN copies TEXT NOT NULL DEFAULT '[]';
ALTER TABLE destinations ADD COLUMN copied TEXT NOT NULL DEFAULT '[]';
