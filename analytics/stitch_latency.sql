-- Stitch latency (`longform stats`: stitchLatency): seconds from timings.stitchStartedAt to
-- timings.completedAt of the completed jobs that stitched: how many, p50 and p95 (PERCENTILE_CONT:
-- linear interpolation, as stats.percentile; rounded to the millisecond, as stats rounds them) and
-- the max.
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
latencies AS (
  SELECT
    TIMESTAMP_DIFF(
      TIMESTAMP(JSON_VALUE(data, '$.timings.completedAt')),
      TIMESTAMP(JSON_VALUE(data, '$.timings.stitchStartedAt')),
      MICROSECOND
    ) / 1000000 AS seconds
  FROM jobs
  WHERE JSON_VALUE(data, '$.status') = 'completed'
    AND JSON_VALUE(data, '$.timings.stitchStartedAt') IS NOT NULL
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
