"""The S3-compatible data plane: `app.DataPlane` and the verbs beside it."""
