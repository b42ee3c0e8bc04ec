-- Quota hits (`longform stats`: quotaHits): the calls refused for quota (429, RESOURCE_EXHAUSTED)
-- counted on the jobs: every scene's quotaHits and every job's stitchQuotaHits.
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
scene_hits AS (
  SELECT IFNULL(SUM(SAFE_CAST(JSON_VALUE(scene, '$.quotaHits') AS INT64)), 0) AS hits
  FROM jobs, UNNEST(JSON_QUERY_ARRAY(jobs.data, '$.segments')) AS scene
),
stitch_hits AS (
  SELECT IFNULL(SUM(SAFE_CAST(JSON_VALUE(data, '$.stitchQuotaHits') AS INT64)), 0) AS hits
  FROM jobs
)
SELECT
  scene_hits.hits AS scenes,
  stitch_hits.hits AS stitches,
  scene_hits.hits + stitch_hits.hits AS quota_hits
FROM scene_hits CROSS JOIN stitch_hits
