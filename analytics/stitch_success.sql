-- Stitch success (`longform stats`: stitchesCompleted): of the jobs that began stitching
-- (timings.stitchStartedAt set), those completed; the rate rounded to a millionth as stats rounds
-- it (NULL when no job began stitching).
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
  completed,
  stitched,
  ROUND(SAFE_DIVIDE(completed, stitched), 6) AS rate
FROM (
  SELECT
    COUNT(IF(JSON_VALUE(data, '$.status') = 'completed', 1, NULL)) AS completed,
    COUNT(*) AS stitched
  FROM jobs
  WHERE JSON_VALUE(data, '$.timings.stitchStartedAt') IS NOT NULL
)
