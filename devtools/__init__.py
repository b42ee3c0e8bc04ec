"""Development tools: local stand-ins for the cloud services that cannot run here (Veo on Vertex AI,
the Transcoder API, Google's token endpoint, Inngest), the emulators they sit beside, and media
probes. ``make emulators``, ``make bench`` and the tests use them; the deployed functions never do."""
