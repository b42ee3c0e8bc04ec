-- Failures by step (`longform stats`: failuresByStep): the failed jobs counted by the kind of step
-- that failed: errorStep without its numeric parts (segment-2-poll-0 is segment-poll, as
-- stats.step_kind), 'unknown' when the job names none.
--
-- Reads the view firebase/firestore-bigquery-export keeps of the live videoJobs documents (latest
-- row per document, deleted ones left out), with JSON functions on its `data`: see README, "BigQuery
-- export". Parameters: @since TIMESTAMP (jobs created at or after it; NULL for all), @user STRING
-- (that user's jobs; NULL for all).
WITH jobs AS (
  SELECT data
  FROM `longform_analytics.video_jobs_raw_latest`
  WHERE (@since IS NULL OR TIMESTAMP(JSON_VALUE(data, '$.timings.createdAt')) >= @since)
    AND (@user IS NULL OR JSON_VALUE(data, '$.userId') = @user)
),
failed AS (
  SELECT
    CASE
      WHEN IFNULL(step, '') = '' THEN 'unknown'
      ELSE ARRAY_TO_STRING(
        ARRAY(
          SELECT part
          FROM UNNEST(SPLIT(step, '-')) AS part WITH OFFSET AS position
          WHERE NOT REGEXP_CONTAINS(part, r'^[0-9]+$')
          ORDER BY position
        ),
        '-'
      )
    END AS step_kind
  FROM (
    SELECT JSON_VALUE(data, '$.errorStep') AS step
    FROM jobs
    WHERE JSON_VALUE(data, '$.status') = 'failed'
  )
)
SELECT step_kind, COUNT(*) AS failed
FROM failed
GROUP BY step_kind
ORDER BY step_kind
