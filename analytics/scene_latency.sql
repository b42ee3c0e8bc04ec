-- Scene latency (`longform stats`: sceneLatency): seconds from a scene's startedAt to its
-- completedAt, over the completed scenes (attempts > 0) of the jobs; a retried scene's includes its
-- retries. How many, p50 and p95 (PERCENTILE_CONT: linear interpolation, as stats.percentile;
-- rounded to the millisecond, as stats rounds them) and the max.
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
  SELECT scene
  FROM jobs, UNNEST(JSON_QUERY_ARRAY(jobs.data, '$.segments')) AS scene
),
latencies AS (
  SELECT
    TIMESTAMP_DIFF(
      TIMESTAMP(JSON_VALUE(scene, '$.completedAt')),
      TIMESTAMP(JSON_VALUE(scene, '$.startedAt')),
      MICROSECOND
    ) / 1000000 AS seconds
  FROM scenes
  WHERE JSON_VALUE(scene, '$.status') = 'completed'
    AND SAFE_CAST(JSON_VALUE(scene, '$.attempts') AS INT64) > 0
    AND IFNULL(JSON_VALUE(scene, '$.startedAt'), '') != ''
    AND IFNULL(JSON_VALUE(scene, '$.completedAt'), '') != ''
)
SELECT
  COUNT(*) AS count,
  ROUND(ANY_VALUE(p50), 3) AS p50,
  ROUND(ANY_VALUE(p95), 3) AS p95,
  MAX(seconds) AS max
FROM (
  SELECT
    seconds,
    PERCENTILE_CONT(seconds, 0.5) OVER () AS p50,
    PERCENTILE_CONT(seconds, 0.95) OVER () AS p95
  FROM latencies
)
