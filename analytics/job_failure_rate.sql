-- Job failure rate (`longform stats`: jobsFailed): of the jobs that ended (completed, failed or
-- cancelled), those failed; the rate rounded to a millionth as stats rounds it (NULL when none
-- ended).
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
)
SELECT
  failed,
  ended,
  ROUND(SAFE_DIVIDE(failed, ended), 6) AS rate
FROM (
  SELECT
    COUNT(IF(JSON_VALUE(data, '$.status') = 'failed', 1, NULL)) AS failed,
    COUNT(*) AS ended
  FROM jobs
  WHERE JSON_VALUE(data, '$.status') IN ('completed', 'failed', 'cancelled')
)
