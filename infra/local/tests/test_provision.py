"""provision.py builds the local resources (tables in DynamoDB Local, the rest in moto) and the functions' environment
from template.yaml itself."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import LOCAL_DIR, REPO_ROOT
from cfn_template import Resolver, TemplateError, load_template, merge_globals, parse_yaml
from provision import (
    aws_client,
    format_env,
    provision,
    queues_in_creation_order,
    read_env_file,
)

TEMPLATE = REPO_ROOT / "template.yaml"


def template_queues() -> int:
    """How many queues template.yaml declares (each with its dead-letter queue counted)."""
    return len(load_template(TEMPLATE).resources_of_type("AWS::SQS::Queue"))


def test_the_tours_table_has_the_templates_keys_index_ttl_and_billing(moto, dynamodb):
    result = provision(moto, TEMPLATE, dynamodb_endpoint=dynamodb)

    table = aws_client("dynamodb", dynamodb).describe_table(TableName=result.tables["ToursTable"]["Ref"])["Table"]
    assert table["TableName"] == "tour-booking-local-ToursTable"
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]} == {
        "pk": "S", "sk": "S", "gsi1pk": "S", "gsi1sk": "S", "gsi2pk": "S", "gsi2sk": "S", "gsi3pk": "S", "gsi3sk": "S",
    }
    # gsi1: conversations, the outbox, pending messages; gsi2 and gsi3: the analytics (by tour start, by booking).
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    assert sorted(indexes) == ["gsi1", "gsi2", "gsi3"]
    for name, index in indexes.items():
        assert [k["AttributeName"] for k in index["KeySchema"]] == [f"{name}pk", f"{name}sk"]
        assert index["Projection"] == {"ProjectionType": "ALL"}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = aws_client("dynamodb", dynamodb).describe_time_to_live(TableName=table["TableName"])
    assert ttl["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def test_the_sync_queue_redrives_to_its_dead_letter_queue_after_five_receives(moto):
    result = provision(moto, TEMPLATE)
    sqs = aws_client("sqs", moto)

    queue = sqs.get_queue_attributes(QueueUrl=result.queues["TourSyncQueue"]["QueueUrl"], AttributeNames=["All"])
    dead_letter = sqs.get_queue_attributes(
        QueueUrl=result.queues["TourSyncDeadLetterQueue"]["QueueUrl"], AttributeNames=["All"]
    )
    redrive = json.loads(queue["Attributes"]["RedrivePolicy"])
    assert redrive == {"deadLetterTargetArn": dead_letter["Attributes"]["QueueArn"], "maxReceiveCount": 5}
    assert queue["Attributes"]["VisibilityTimeout"] == "180"
    assert dead_letter["Attributes"]["MessageRetentionPeriod"] == "1209600"


def test_the_resolved_env_names_the_created_resources_and_secrets(moto, dynamodb):
    result = provision(moto, TEMPLATE, params={"ResManBaseUrl": "http://127.0.0.1:8091"}, dynamodb_endpoint=dynamodb)
    env = result.env()

    assert env["TABLE_NAME"] == "tour-booking-local-ToursTable"
    assert env["SYNC_QUEUE_URL"] == result.queues["TourSyncQueue"]["QueueUrl"]
    assert env["SYNC_DLQ_URL"] == result.queues["TourSyncDeadLetterQueue"]["QueueUrl"]
    assert env["QUEUE_URL_TourSyncQueue"] == env["SYNC_QUEUE_URL"]
    assert env["QUEUE_URL_TourSyncDeadLetterQueue"] == env["SYNC_DLQ_URL"]
    assert env["RESMAN_BASE_URL"] == "http://127.0.0.1:8091"
    assert env["AVAILABILITY_CACHE_TTL_SECONDS"] == "60"
    assert env["RUST_LOG"] == env["AWS_LAMBDA_LOG_LEVEL"] == "info"
    assert env["AWS_ENDPOINT_URL"] == moto
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == dynamodb
    secrets = aws_client("secretsmanager", moto)
    for variable in ("RESMAN_CREDENTIALS_SECRET_ARN", "API_KEYS_SECRET_ARN", "WEBHOOK_SECRET_ARN"):
        assert secrets.describe_secret(SecretId=env[variable])["ARN"] == env[variable]
    credentials = json.loads(secrets.get_secret_value(SecretId=env["RESMAN_CREDENTIALS_SECRET_ARN"])["SecretString"])
    assert credentials == {"integration_partner_id": "domiq-sandbox", "api_key": "sandbox-api-key", "account_id": 400}


def test_provisioning_twice_succeeds_and_keeps_resources_and_secret_values(moto, dynamodb):
    first = provision(moto, TEMPLATE, secrets={"WebhookSecretArn": "first"}, dynamodb_endpoint=dynamodb)
    second = provision(moto, TEMPLATE, dynamodb_endpoint=dynamodb)
    third = provision(moto, TEMPLATE, secrets={"WebhookSecretArn": "third"}, dynamodb_endpoint=dynamodb)

    assert first.env() == second.env() == third.env()
    secrets = aws_client("secretsmanager", moto)
    arn = first.env()["WEBHOOK_SECRET_ARN"]
    assert secrets.get_secret_value(SecretId=arn)["SecretString"] == "third"
    assert len(aws_client("sqs", moto).list_queues()["QueueUrls"]) == template_queues()
    assert aws_client("dynamodb", dynamodb).list_tables()["TableNames"] == ["tour-booking-local-ToursTable"]


def test_with_a_dynamodb_endpoint_the_tables_go_there_and_the_env_routes_dynamodb_there(moto, dynamodb):
    env = provision(moto, TEMPLATE, dynamodb_endpoint=dynamodb).env()

    assert env["AWS_ENDPOINT_URL"] == moto
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == dynamodb
    assert aws_client("dynamodb", dynamodb).list_tables()["TableNames"] == [env["TABLE_NAME"]]
    assert aws_client("dynamodb", moto).list_tables()["TableNames"] == []


def test_with_one_endpoint_everything_goes_there_and_the_env_names_only_it(moto):
    env = provision(moto, TEMPLATE).env()

    assert env["AWS_ENDPOINT_URL"] == moto
    assert "AWS_ENDPOINT_URL_DYNAMODB" not in env
    assert aws_client("dynamodb", moto).list_tables()["TableNames"] == [env["TABLE_NAME"]]


def test_two_prefixes_provision_independent_copies_in_one_dynamodb_local_and_one_moto(moto, dynamodb):
    first = provision(moto, TEMPLATE, prefix="test-1", dynamodb_endpoint=dynamodb).env()
    second = provision(moto, TEMPLATE, prefix="test-2", dynamodb_endpoint=dynamodb).env()
    tables = aws_client("dynamodb", dynamodb)
    item = {"pk": {"S": "PROPERTY#1"}, "sk": {"S": "CONFIG"}}

    tables.put_item(TableName=first["TABLE_NAME"], Item=item)

    assert (first["TABLE_NAME"], second["TABLE_NAME"]) == ("test-1-ToursTable", "test-2-ToursTable")
    assert tables.get_item(TableName=first["TABLE_NAME"], Key=item)["Item"] == item
    assert "Item" not in tables.get_item(TableName=second["TABLE_NAME"], Key=item)
    for name in ("SYNC_QUEUE_URL", "SYNC_DLQ_URL", "WEBHOOK_SECRET_ARN", "API_KEYS_SECRET_ARN"):
        assert first[name] != second[name]
    assert len(aws_client("sqs", moto).list_queues()["QueueUrls"]) == 2 * template_queues()


def test_the_cli_writes_the_env_file_and_takes_params_and_secrets(moto, dynamodb, tmp_path):
    env_file = tmp_path / "nested" / "function.env"
    completed = subprocess.run(
        [
            sys.executable, str(LOCAL_DIR / "provision.py"),
            "--endpoint", moto, "--dynamodb-endpoint", dynamodb,
            "--template", str(TEMPLATE), "--env-out", str(env_file),
            "--param", "LogLevel=debug", "--secret", "ApiKeysSecretArn=[\"k1\", \"k2\"]", "--prefix", "cli",
        ],
        capture_output=True, text=True, timeout=60,
    )

    assert completed.returncode == 0, completed.stderr
    env = read_env_file(env_file)
    assert env["TABLE_NAME"] == "cli-ToursTable"
    assert (env["AWS_ENDPOINT_URL"], env["AWS_ENDPOINT_URL_DYNAMODB"]) == (moto, dynamodb)
    assert aws_client("dynamodb", dynamodb).list_tables()["TableNames"] == ["cli-ToursTable"]
    assert env["RUST_LOG"] == "debug"
    assert env["SYNC_DLQ_URL"].endswith("/cli-TourSyncDeadLetterQueue")
    keys = aws_client("secretsmanager", moto).get_secret_value(SecretId=env["API_KEYS_SECRET_ARN"])
    assert json.loads(keys["SecretString"]) == ["k1", "k2"]
    assert all("=" in line for line in env_file.read_text().splitlines())


def test_the_cli_fails_with_a_reason_for_an_unknown_secret_parameter(moto):
    completed = subprocess.run(
        [sys.executable, str(LOCAL_DIR / "provision.py"), "--endpoint", moto, "--secret", "NoSuchSecretArn=x"],
        capture_output=True, text=True, timeout=60,
    )

    assert completed.returncode == 1
    assert "NoSuchSecretArn" in completed.stderr


def test_short_tags_become_the_long_form():
    document = parse_yaml(
        "A: !Ref X\nB: !GetAtt Res.Attr.Sub\nC: !Sub '${X}-y'\nD: !If [Cond, !Ref X, !Ref AWS::NoValue]\n"
        "E: !Equals [a, b]\nF: 2010-09-09\n"
    )

    assert document == {
        "A": {"Ref": "X"},
        "B": {"Fn::GetAtt": ["Res", "Attr.Sub"]},
        "C": {"Fn::Sub": "${X}-y"},
        "D": {"Fn::If": ["Cond", {"Ref": "X"}, {"Ref": "AWS::NoValue"}]},
        "E": {"Fn::Equals": ["a", "b"]},
        "F": "2010-09-09",
    }


def test_globals_merge_as_sam_merges_them():
    merged = merge_globals(
        {"Timeout": 10, "Environment": {"Variables": {"A": "1", "B": "2"}}, "Layers": ["g"], "Role": {"Ref": "R"}},
        {"Timeout": 30, "Environment": {"Variables": {"B": "3"}}, "Layers": ["f"], "Role": {"Fn::GetAtt": ["S", "Arn"]}},
    )

    assert merged == {
        "Timeout": 30,
        "Environment": {"Variables": {"A": "1", "B": "3"}},
        "Layers": ["g", "f"],
        "Role": {"Fn::GetAtt": ["S", "Arn"]},
    }


def test_the_resolver_evaluates_sub_join_select_if_and_mappings(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        "Parameters:\n  Stage: {Type: String, Default: dev}\n"
        "Conditions:\n  IsProd: !Equals [!Ref Stage, prod]\n"
        "Mappings:\n  Sizes: {dev: {Memory: 128}}\n"
        "Resources: {}\n"
    )
    resolver = Resolver(
        template=load_template(path),
        resources={"Queue": {"Ref": "http://q", "Arn": "arn:q"}},
    )

    assert resolver.resolve({"Fn::Sub": "${Stage}-${Queue.Arn}-${AWS::Region}-${!Literal}"}) == (
        "dev-arn:q-us-east-1-${Literal}"
    )
    assert resolver.resolve({"Fn::Join": ["/", [{"Ref": "Stage"}, "x"]]}) == "dev/x"
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}) == "b"
    assert resolver.resolve({"Fn::If": ["IsProd", "big", {"Ref": "AWS::NoValue"}]}) is not None
    assert resolver.resolve({"K": {"Fn::If": ["IsProd", "big", {"Ref": "AWS::NoValue"}]}}) == {}
    assert resolver.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Memory"]}) == 128
    with pytest.raises(TemplateError, match="Nope"):
        resolver.resolve({"Ref": "Nope"})
    with pytest.raises(TemplateError, match="Fn::ImportValue"):
        resolver.resolve({"Fn::ImportValue": "x"})


def test_dead_letter_queues_are_created_before_the_queues_that_use_them():
    order = [logical_id for logical_id, _ in queues_in_creation_order(load_template(TEMPLATE))]

    assert order.index("TourSyncDeadLetterQueue") < order.index("TourSyncQueue")


def test_env_values_that_a_shell_would_misread_are_quoted_and_read_back():
    text = format_env({"PLAIN": "arn:aws:x/y-z", "SPACED": "rate(1 minute)", "EMPTY": ""})

    assert "PLAIN=arn:aws:x/y-z\n" in text
    assert "SPACED='rate(1 minute)'\n" in text
    result = subprocess.run(
        ["bash", "-c", 'set -a; . /dev/stdin; printf "%s|%s|%s" "$PLAIN" "$SPACED" "$EMPTY"'],
        input=text, capture_output=True, text=True, check=True,
    )
    assert result.stdout == "arn:aws:x/y-z|rate(1 minute)|"
