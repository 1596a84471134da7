"""``python -m bench.load`` (``make load``): concurrent clients against the local API, then proof nothing was lost.

What it does, bounded in time and on loopback only:

1. starts ``python -m local_api`` as a subprocess on a free loopback port, with one API key per client
   group (``DEV_API_KEYS``) and its own state file (``LOCAL_API_STATE``), which names the embedded moto
   endpoint;
2. runs ``--clients`` threads for ``--seconds``, each with one keep-alive ``http.client`` connection, mixing:
   creates (base64 JSON or a data URL, multipart/form-data, a raw body, a JSON create under an
   ``Idempotency-Key`` with its replay and sometimes racing itself on a second connection, a presigned S3
   upload finalised once or twice at once), GET of its own jobs and of another client's (404), list pages
   (cursor paging, status filters), cancel (sometimes twice at once) and feedback. Every file is a real
   PNG, JPG or PDF made distinct per create (so every job has its own SHA-256);
3. meanwhile a "pipeline" thread drives some jobs ``pending -> processing -> completed | failed`` through
   the Lambda's own ``JobService`` against the same emulated AWS, so that feedback can succeed and
   cancels race completions;
4. records every response (status and error code per operation, latency percentiles, throughput); any
   5xx, transport error or response outside the operation's expected set fails the run;
5. then verifies: every job that got a 201 is retrievable (200) with the SHA-256 and size of the bytes its
   client sent and the status its client expects (pending, cancelled, completed or failed); the jobs
   table, scanned through the moto endpoint, holds exactly those job records (idempotency and upload-claim
   items are counted apart); the blueprints bucket holds exactly one object per job, at the record's key,
   with the very bytes sent (no orphan, no record without its object, no upload left behind by a
   finalised upload); the cache bucket holds a result for exactly the completed jobs and one feedback
   document per 201 feedback; and each client's full paged list is exactly its own jobs.

Prints the counts, the percentiles and the verification; exits 0 only if all of it holds. The server is
always stopped (also on Ctrl-C, SIGTERM, an error or the hard ``--timeout``).

The parts, in the order a run meets them: ``run`` (main), ``server`` (the local API), ``client``,
``creates`` and ``worker`` (the client threads and their mix, from ``plan``), ``connection``, ``blueprints``,
``ledger`` (what the clients were told), ``stats``, ``pipeline``, ``verify``, ``report``.
"""

import local_api  # noqa: F401 - first: it puts src/ on sys.path for the Lambda's own packages
