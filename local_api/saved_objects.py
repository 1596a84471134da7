"""The template's S3 buckets in the saved state: every version of every object (and delete marker), oldest
first per key, its bytes a blob of the state folder, with its content type, user metadata, headers and tags.

Written back in the same order, a versioned bucket ends with the same current objects and the same older
versions behind them (new version ids: nothing of ours keeps one). A version is downloaded once per run:
later saves reuse what they have (its tags are read again on the final save, as they can change without a
new version). Generic over ``template.yaml``: each ``AWS::S3::Bucket`` the stack creates.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from local_api.cfn_template import Stack
from local_api.state_store import StateFolder, UnreadableState

#: ``GetObject`` answers that ``PutObject`` takes back under the same name.
_HEADERS = ("CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage")
_Version = tuple[str, str, str]  # bucket, key, version id


def bucket_names(stack: Stack) -> list[str]:
    return [stack.properties(i)["BucketName"] for i in stack.of_type("AWS::S3::Bucket")]


class ObjectArchive:
    """Saves and restores the buckets' objects through ``folder``'s blobs."""

    def __init__(self, folder: StateFolder) -> None:
        self.folder = folder
        self._known: dict[_Version, dict[str, Any]] = {}

    def snapshot(self, s3: Any, stack: Stack, *, refresh_tags: bool = False) -> dict[str, Any]:
        saved = {}
        for bucket in bucket_names(stack):
            entries, seen = [], set()
            for version in _versions(s3, bucket):
                ident = (bucket, version["Key"], version["VersionId"])
                seen.add(ident)
                entries.append(self._entry(s3, ident, version, refresh_tags))
            for ident in [i for i in self._known if i[0] == bucket and i not in seen]:
                del self._known[ident]  # deleted versions: forget them
            saved[bucket] = {"objects": entries}
        return saved

    def _entry(self, s3: Any, ident: _Version, version: dict[str, Any], refresh_tags: bool) -> dict[str, Any]:
        bucket, key, version_id = ident
        if version.get("delete_marker"):
            return {"key": key, "delete_marker": True}
        entry = self._known.get(ident)
        if entry is None:
            got = s3.get_object(Bucket=bucket, Key=key, VersionId=version_id)
            entry = {
                "key": key,
                "blob": self.folder.put_blob(got["Body"].read()),
                "content_type": got.get("ContentType") or "binary/octet-stream",
                "metadata": dict(got.get("Metadata") or {}),
                "headers": {name: got[name] for name in _HEADERS if got.get(name)},
            }
            refresh_tags = True
        if refresh_tags:
            tags = s3.get_object_tagging(Bucket=bucket, Key=key, VersionId=version_id).get("TagSet", [])
            entry = {**entry, "tags": {t["Key"]: t["Value"] for t in tags}}
        self._known[ident] = entry
        return entry

    def blobs_in(self, saved: dict[str, Any]) -> set[str]:
        return {o["blob"] for bucket in saved.values() for o in bucket["objects"] if not o.get("delete_marker")}

    def check(self, saved: Any, stack: Stack) -> list[str]:
        """``UnreadableState`` unless every saved object can be written back; returns notes."""
        if not isinstance(saved, dict):
            raise UnreadableState('"buckets" is not an object')
        names, notes = bucket_names(stack), []
        for bucket, content in saved.items():
            if bucket not in names:
                notes.append(f"bucket {bucket} is no longer in template.yaml: its objects are not restored")
                continue
            objects = content.get("objects") if isinstance(content, dict) else None
            if not isinstance(objects, list):
                raise UnreadableState(f"bucket {bucket}: no list of objects")
            for entry in objects:
                problem = _entry_problem(entry, self.folder)
                if problem:
                    raise UnreadableState(f"bucket {bucket}: {problem}")
        return notes

    def restore(self, s3: Any, saved: dict[str, Any], stack: Stack) -> dict[str, int]:
        """Write the saved versions back (checked by ``check``); bucket -> versions written."""
        names, counts = bucket_names(stack), {}
        for bucket, content in saved.items():
            if bucket not in names:
                continue
            for entry in content["objects"]:
                if entry.get("delete_marker"):
                    s3.delete_object(Bucket=bucket, Key=entry["key"])
                    continue
                extra = {name: value for name, value in entry.get("headers", {}).items() if name in _HEADERS}
                if entry.get("tags"):
                    extra["Tagging"] = urlencode(entry["tags"])
                put = s3.put_object(
                    Bucket=bucket,
                    Key=entry["key"],
                    Body=self.folder.read_blob(entry["blob"]),
                    ContentType=entry["content_type"],
                    Metadata=entry.get("metadata", {}),
                    **extra,
                )
                # What this run's saves would read back: no need to download it again.
                self._known[(bucket, entry["key"], put.get("VersionId") or "null")] = entry
            counts[bucket] = len(content["objects"])
        return counts


def _versions(s3: Any, bucket: str) -> list[dict[str, Any]]:
    """Every version and delete marker of ``bucket``, oldest first per key (the current one last)."""
    found: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        found.extend(page.get("Versions", []))
        found.extend({**marker, "delete_marker": True} for marker in page.get("DeleteMarkers", []))
    return sorted(found, key=lambda v: (v["Key"], v["LastModified"], bool(v.get("IsLatest"))))


def _entry_problem(entry: Any, folder: StateFolder) -> str | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
        return "an object without a key"
    if entry.get("delete_marker"):
        return None
    if not isinstance(entry.get("content_type"), str) or not isinstance(entry.get("metadata", {}), dict):
        return f"object {entry['key']}: no content type or metadata"
    blob = entry.get("blob")
    if not isinstance(blob, str) or not folder.has_blob(blob):
        return f"object {entry['key']}: its bytes (blob {str(blob)[:12]}...) are missing from the state folder"
    return None
