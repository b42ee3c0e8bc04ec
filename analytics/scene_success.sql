-- Scene success (`longform stats`: scenesFirstAttempt, scenesCompleted): of the scenes attempted
-- (attempts > 0), those completed at their first attempt and those completed at all; each rate
-- rounded to a millionth as stats rounds it (NULL when no scene was attempted).
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
scenes AS (
  SELECT
    JSON_VALUE(scene, '$.status') AS status,
    SAFE_CAST(JSON_VALUE(scene, '$.attempts') AS INT64) AS attempts
  FROM jobs, UNNEST(JSON_QUERY_ARRAY(jobs.data, '$.segments')) AS scene
)
SELECT
  first_attempt,
  completed,
  attempted,
  ROUND(SAFE_DIVIDE(first_attempt, attempted), 6) AS first_attempt_rate,
  ROUND(SAFE_DIVIDE(completed, attempted), 6) AS completed_rate
FROM (
  SELECT
    COUNT(IF(status = 'completed' AND attempts = 1, 1, NULL)) AS first_attempt,
    COUNT(IF(status = 'completed', 1, NULL)) AS completed,
    COUNT(*) AS attempted
  FROM scenes
  WHERE attempts > 0
)
