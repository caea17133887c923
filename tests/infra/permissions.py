"""What each Google API method the services call needs from IAM, and what the roles the deployment
grants contain: the checked-in table the permission proof (tests/gcp/test_permissions.py) reads.

METHODS: a REST or gRPC method -> (permission, the resource it is checked on). The resource is named
by its part in the call:
    project        the project in the path (BigQuery jobs are a project's)
    object         the object named by the call        bucket      the bucket (a list)
    source         the object copied from              destination the object copied to
    ...-replaced   only when the call may replace an existing object: without ifGenerationMatch=0
    table, dataset the table in the path, its dataset   topic, subscription   the one in the request
STATEMENTS: what a query job's statement needs on the tables it names (target: the table it writes;
read: every other table it reads; target-dataset: the dataset a new table goes into). LOAD: a load job.
Nothing here is guessed from the emulators (they check no permission): every row cites Google's page.
"""

from __future__ import annotations

Rule = tuple[str, str]  # (permission, the resource it is checked on)

METHODS: dict[str, tuple[Rule, ...]] = {
    # Cloud Storage JSON API, https://cloud.google.com/storage/docs/access-control/iam-json ("Objects"):
    # insert, copy and rewrite need storage.objects.delete as well "if an object with the same name
    # exists"; a write with ifGenerationMatch=0 never replaces one (it fails with 412 instead).
    "storage.objects.insert": (("storage.objects.create", "object"), ("storage.objects.delete", "object-replaced")),
    # The chunks of a resumable upload go to the session URI the insert returned; "the session URI acts as
    # an authentication token" (https://cloud.google.com/storage/docs/resumable-uploads): no IAM check.
    "storage.objects.insert:session": (),
    "storage.objects.get": (("storage.objects.get", "object"),),
    "storage.objects.delete": (("storage.objects.delete", "object"),),
    "storage.objects.list": (("storage.objects.list", "bucket"),),
    "storage.buckets.get": (("storage.buckets.get", "bucket"),),
    # google-cloud-storage 3.17 reads a bucket's metadata on a background thread for its trace attributes
    # (google/cloud/storage/_bucket_metadata_cache.py) and, on 403, caches a fallback "to avoid retry
    # storms": optional, nothing of ours depends on it; not granted (DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_
    # METADATA=true turns it off).
    "storage.buckets.get:client-metadata": (),
    "storage.objects.copy": (
        ("storage.objects.get", "source"),
        ("storage.objects.create", "destination"),
        ("storage.objects.delete", "destination-replaced"),
    ),
    "storage.objects.rewrite": (
        ("storage.objects.get", "source"),
        ("storage.objects.create", "destination"),
        ("storage.objects.delete", "destination-replaced"),
    ),
    # BigQuery v2 REST, https://cloud.google.com/bigquery/docs/reference/rest/v2 (each method's "IAM
    # Permissions"). jobs.insert also needs what its statements or load need (STATEMENTS, LOAD).
    "bigquery.jobs.insert": (("bigquery.jobs.create", "project"),),
    "bigquery.jobs.query": (("bigquery.jobs.create", "project"),),
    # "When you create a job, you are automatically granted bigquery.jobs.get and bigquery.jobs.update
    # for that job" (https://cloud.google.com/bigquery/docs/jobs-overview): polling, results, cancel.
    "bigquery.jobs.get": (),
    "bigquery.jobs.getQueryResults": (),
    "bigquery.jobs.cancel": (),
    "bigquery.tables.get": (("bigquery.tables.get", "table"),),
    "bigquery.tables.delete": (("bigquery.tables.delete", "table"),),
    "bigquery.tables.insert": (("bigquery.tables.create", "dataset"),),
    "bigquery.tables.list": (("bigquery.tables.list", "dataset"),),
    "bigquery.tabledata.list": (("bigquery.tables.getData", "table"),),
    "bigquery.datasets.get": (("bigquery.datasets.get", "dataset"),),
    "bigquery.datasets.insert": (("bigquery.datasets.create", "project"),),
    # Pub/Sub gRPC, https://cloud.google.com/pubsub/docs/access-control ("Required permissions" per method).
    "google.pubsub.v1.Publisher/Publish": (("pubsub.topics.publish", "topic"),),
    "google.pubsub.v1.Publisher/GetTopic": (("pubsub.topics.get", "topic"),),
    "google.pubsub.v1.Subscriber/Pull": (("pubsub.subscriptions.consume", "subscription"),),
    "google.pubsub.v1.Subscriber/StreamingPull": (("pubsub.subscriptions.consume", "subscription"),),
    "google.pubsub.v1.Subscriber/Acknowledge": (("pubsub.subscriptions.consume", "subscription"),),
    "google.pubsub.v1.Subscriber/ModifyAckDeadline": (("pubsub.subscriptions.consume", "subscription"),),
    "google.pubsub.v1.Subscriber/GetSubscription": (("pubsub.subscriptions.get", "subscription"),),
    # Cloud Run resolves a secret environment variable when an instance starts, as the service's own
    # identity (https://cloud.google.com/run/docs/configuring/services/secrets): not a call of our code,
    # read from the Terraform configuration instead (tests/gcp/test_permissions.py).
    "secretmanager.versions.access": (("secretmanager.versions.access", "secret"),),
}

# Query statements. DML: https://cloud.google.com/bigquery/docs/reference/standard-sql/dml-syntax
# (bigquery.tables.updateData on the table modified, bigquery.tables.getData on the tables read; MERGE,
# UPDATE and DELETE read their target too). CREATE TABLE [AS SELECT]: https://cloud.google.com/bigquery/docs/tables
# (bigquery.tables.create on the dataset, getData on what the query reads, updateData on the table it
# fills); OR REPLACE also bigquery.tables.update (https://cloud.google.com/bigquery/docs/reference/
# standard-sql/data-definition-language#create_table_statement). DROP TABLE: bigquery.tables.delete.
STATEMENTS: dict[str, tuple[Rule, ...]] = {
    "SELECT": (("bigquery.tables.getData", "read"),),
    "DECLARE": (("bigquery.tables.getData", "read"),),
    "SET": (("bigquery.tables.getData", "read"),),
    "TRANSACTION": (),  # BEGIN / COMMIT / ROLLBACK TRANSACTION
    "INSERT": (("bigquery.tables.updateData", "target"), ("bigquery.tables.getData", "read")),
    "MERGE": (
        ("bigquery.tables.updateData", "target"),
        ("bigquery.tables.getData", "target"),
        ("bigquery.tables.getData", "read"),
    ),
    "UPDATE": (
        ("bigquery.tables.updateData", "target"),
        ("bigquery.tables.getData", "target"),
        ("bigquery.tables.getData", "read"),
    ),
    "DELETE": (
        ("bigquery.tables.updateData", "target"),
        ("bigquery.tables.getData", "target"),
        ("bigquery.tables.getData", "read"),
    ),
    "CREATE TABLE": (
        ("bigquery.tables.create", "target-dataset"),
        ("bigquery.tables.updateData", "target"),
        ("bigquery.tables.getData", "read"),
    ),
    "CREATE OR REPLACE TABLE": (
        ("bigquery.tables.create", "target-dataset"),
        ("bigquery.tables.update", "target"),
        ("bigquery.tables.updateData", "target"),
        ("bigquery.tables.getData", "read"),
    ),
    "DROP TABLE": (("bigquery.tables.delete", "target"),),
}

# A load job from Cloud Storage, https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-json
# ("Required permissions"): bigquery.tables.create (CREATE_IF_NEEDED), updateData, update (WRITE_TRUNCATE
# replaces the table's data) on the destination, and storage.objects.get on every source object, which
# BigQuery reads with the caller's own credentials ("Caller does not have storage.objects.get access to the
# Google Cloud Storage object ... e.g. Storage Object Viewer", BigQuery's error). storage.objects.list is
# needed for a wildcard URI only (the loader names every file). The same page lists storage.buckets.get,
# which roles/storage.objectViewer lacks and real loads do not check (see the report of issue 12): not
# modelled, stated here so it is not silently forgotten.
LOAD: tuple[Rule, ...] = (
    ("bigquery.tables.create", "target-dataset"),
    ("bigquery.tables.updateData", "target"),
    ("bigquery.tables.update", "target-truncated"),
    ("storage.objects.get", "source"),
    ("storage.objects.list", "source-wildcard"),
)

# Predefined roles: only the permissions relevant here (each role holds more, e.g. resourcemanager.projects.get).
ROLES: dict[str, frozenset[str]] = {
    # https://cloud.google.com/iam/docs/roles-permissions/storage (and storage/docs/access-control/iam-roles)
    "roles/storage.objectCreator": frozenset(
        {
            "storage.objects.create",
            "storage.managedFolders.create",
            "storage.multipartUploads.create",
            "storage.multipartUploads.abort",
            "storage.multipartUploads.listParts",
        }
    ),
    "roles/storage.objectViewer": frozenset(
        {
            "storage.objects.get",
            "storage.objects.list",
            "storage.folders.get",
            "storage.folders.list",
            "storage.managedFolders.get",
            "storage.managedFolders.list",
        }
    ),
    # https://cloud.google.com/iam/docs/roles-permissions/bigquery
    "roles/bigquery.jobUser": frozenset({"bigquery.jobs.create", "bigquery.config.get"}),
    "roles/bigquery.metadataViewer": frozenset(
        {"bigquery.datasets.get", "bigquery.tables.get", "bigquery.tables.list", "bigquery.routines.get"}
    ),
    "roles/bigquery.dataViewer": frozenset(
        {
            "bigquery.datasets.get",
            "bigquery.tables.get",
            "bigquery.tables.getData",
            "bigquery.tables.list",
            "bigquery.tables.export",
            "bigquery.tables.createSnapshot",
        }
    ),
    "roles/bigquery.dataEditor": frozenset(
        {
            "bigquery.datasets.get",
            "bigquery.tables.create",
            "bigquery.tables.delete",
            "bigquery.tables.get",
            "bigquery.tables.getData",
            "bigquery.tables.list",
            "bigquery.tables.update",
            "bigquery.tables.updateData",
            "bigquery.tables.export",
            "bigquery.tables.createSnapshot",
        }
    ),
    # https://cloud.google.com/iam/docs/roles-permissions/pubsub
    "roles/pubsub.publisher": frozenset({"pubsub.topics.publish"}),
    "roles/pubsub.subscriber": frozenset(
        {"pubsub.subscriptions.consume", "pubsub.topics.attachSubscription", "pubsub.snapshots.seek"}
    ),
    "roles/pubsub.viewer": frozenset(
        {"pubsub.topics.get", "pubsub.topics.list", "pubsub.subscriptions.get", "pubsub.subscriptions.list"}
    ),
    # https://cloud.google.com/iam/docs/roles-permissions/secretmanager
    "roles/secretmanager.secretAccessor": frozenset({"secretmanager.versions.access"}),
}
