"""Firebase entry points of the ``longform`` codebase: a thin list, no logic.

The pipeline lives in the ``longform`` package beside this file. The Firebase and Inngest entry
points (trigger_long_form_video_job, cancel_long_form_video_job, inngest_api,
poll_transcoder_job) are not declared yet: they arrive with the cloud path (issue 3).
Until then the pipeline runs locally through the ``longform`` command.
"""
