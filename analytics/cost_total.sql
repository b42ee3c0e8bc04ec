-- Cost in all (`longform stats`: costUsd, estimated): the dollars all the jobs spent
-- (cost.totalUsd), rounded to a millionth, and whether any of it was priced rather than billed
-- (cost.estimated: local jobs).
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
  IFNULL(ROUND(SUM(SAFE_CAST(JSON_VALUE(data, '$.cost.totalUsd') AS FLOAT64)), 6), 0) AS cost_usd,
  IFNULL(LOGICAL_OR(SAFE_CAST(JSON_VALUE(data, '$.cost.estimated') AS BOOL)), FALSE) AS estimated
FROM jobs
