"""Bytes behind one interface: `base.StorageBackend`, with `local.LocalBackend` and `s3.S3Backend`.

Import the backend modules directly; only `storage.s3` pulls in boto3.
"""
