-- Cost per user (`longform stats`: costByUser): the dollars each user's jobs spent (cost.totalUsd:
-- every billed generation and the stitch; a failed or cancelled job's what it spent), rounded to a
-- millionth. Jobs without a cost are left out.
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
  JSON_VALUE(data, '$.userId') AS user_id,
  ROUND(SUM(SAFE_CAST(JSON_VALUE(data, '$.cost.totalUsd') AS FLOAT64)), 6) AS cost_usd
FROM jobs
WHERE JSON_VALUE(data, '$.cost.totalUsd') IS NOT NULL
GROUP BY user_id
ORDER BY user_id
