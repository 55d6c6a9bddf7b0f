"""Each function's IAM policy as the local IAM gate enforces it (infra/local/policies.py), and the permission table of
them, held to template.yaml."""

from __future__ import annotations

import re

import pytest

import policies
from cfn_template import Resolver, TemplateError, load_template, parse_yaml, Template
from conftest import REPO_ROOT

TEMPLATE = load_template(REPO_ROOT / "template.yaml")


def resolver_for(template: Template) -> Resolver:
    resolver = Resolver(template=template, parameters={}, resources={})
    for logical_id in template.resources:
        resolver.resources[logical_id] = {
            "Ref": f"ref-{logical_id}", "QueueName": f"q-{logical_id}",
            "Arn": f"arn:aws:service:us-east-1:123456789012:{logical_id}",
        }
    for name in template.parameters:
        if name.endswith("SecretArn"):
            resolver.parameters[name] = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf"
    return resolver


def function(template: Template, binary: str):
    return next(f for f in template.functions() if f.binary == binary)


def small_template(policies_yaml: str, events: str = "") -> Template:
    text = f"""
Parameters:
  KeySecretArn: {{Type: String}}
Conditions:
  Never: !Equals ["a", "b"]
Resources:
  Queue: {{Type: AWS::SQS::Queue}}
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {{BuildProperties: {{Binary: fn}}}}
    Properties:
{events}
      Policies:
{policies_yaml}
"""
    return Template(path=REPO_ROOT / "small.yaml", document=parse_yaml(text))


def test_sam_policy_templates_expand_as_sam_expands_them():
    template = small_template("""
        - SQSSendMessagePolicy: {QueueName: !GetAtt Queue.QueueName}
        - AWSSecretsManagerGetSecretValuePolicy: {SecretArn: !Ref KeySecretArn}
""")
    statements = policies.function_policy(function(template, "fn"), resolver_for(template))
    assert statements == [
        {"effect": "Allow", "actions": ["sqs:SendMessage*"], "resources": ["arn:aws:sqs:us-east-1:123456789012:q-Queue"]},
        {"effect": "Allow", "actions": ["secretsmanager:GetSecretValue"],
         "resources": ["arn:aws:secretsmanager:us-east-1:123456789012:secret:KeySecretArn-AbCdEf"]},
    ]


def test_a_policy_under_a_false_condition_is_left_out_and_an_sqs_trigger_adds_sams_queue_role():
    template = small_template(
        """
        - !If [Never, {AWSSecretsManagerGetSecretValuePolicy: {SecretArn: !Ref KeySecretArn}}, !Ref AWS::NoValue]
""",
        events="""
      Events:
        Q: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
""",
    )
    statements = policies.function_policy(function(template, "fn"), resolver_for(template))
    assert [s.get("sid") for s in statements] == ["AWSLambdaSQSQueueExecutionRole"]
    assert statements[0]["actions"] == ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]


@pytest.mark.parametrize("entry, complaint", [
    ("- AmazonDynamoDBFullAccess", "managed policy"),
    ("- Statement: [{Effect: Allow, Action: s3:GetObject, Resource: '*', Condition: {Bool: {x: y}}}]", "Condition"),
    ("- NoSuchSamTemplate: {X: y}", "neither a policy document nor a SAM policy template"),
])
def test_what_the_gate_cannot_evaluate_fails_loudly(entry, complaint):
    template = small_template(f"        {entry}\n")
    with pytest.raises(TemplateError, match=complaint):
        policies.function_policy(function(template, "fn"), resolver_for(template))


def test_every_function_has_its_own_key_and_its_template_timeout():
    resolver = resolver_for(TEMPLATE)
    gate = policies.gate_policies(TEMPLATE.functions(), resolver)
    binaries = {f.binary for f in TEMPLATE.functions()}
    assert {p["function"] for p in gate["principals"].values()} == binaries
    assert all(re.fullmatch(r"[A-Za-z0-9]+", key) for key in gate["principals"]), "DynamoDB Local's key format"
    settings = policies.function_settings(TEMPLATE.functions(), resolver)
    assert settings["tour-sync-worker"]["timeout_seconds"] == 30
    assert settings["get-tour"]["timeout_seconds"] == 10  # the Globals' Timeout


def test_the_single_tour_read_is_granted_wherever_a_tour_is_read():
    """The findings of the first run under the gate: every function that reads a tour (one BatchGetItem of the tour
    and its personal data) may do so, get-tour may query a tour's messages, and book-tour the conversation index."""
    resolver = resolver_for(TEMPLATE)
    table = resolver.resources["ToursTable"]["Arn"]

    def allowed(binary: str, action: str, resource: str) -> bool:
        return any(action in s["actions"] and resource in s["resources"] and s["effect"] == "Allow"
                   for s in policies.function_policy(function(TEMPLATE, binary), resolver))

    for binary in ("get-tour", "update-tour", "tour-webhook", "tour-sync-worker", "notification-sender",
                   "tour-self-service", "tour-reminder-scheduler", "resman-poll-worker", "book-tour"):
        assert allowed(binary, "dynamodb:BatchGetItem", table), binary
    assert allowed("get-tour", "dynamodb:Query", table)
    assert allowed("book-tour", "dynamodb:Query", f"{table}/index/gsi1")
    poll_queue = resolver.resources["ResManPollQueue"]["Arn"]
    assert allowed("resman-poll-worker", "sqs:ChangeMessageVisibility", poll_queue)


def test_the_readmes_permission_table_is_the_templates():
    readme = (REPO_ROOT / "docs" / "operations" / "permissions.md").read_text()
    found = re.search(r"<!-- permissions:begin -->\n(.*?)<!-- permissions:end -->", readme, re.S)
    assert found, "docs/operations/permissions.md has no <!-- permissions:begin --> ... <!-- permissions:end --> table"
    assert found.group(1) == policies.permission_table(TEMPLATE), (
        "docs/operations/permissions.md's table differs from template.yaml: paste the output of "
        "`.venv/bin/python infra/local/policies.py` between its markers"
    )
