//! What an AWS request asks IAM for: who signed it (the access key in its SigV4 `Authorization` header), which
//! service it is for, and each (action, resource) pair that IAM authorizes, as the services document them:
//!
//! - DynamoDB (JSON 1.0, `X-Amz-Target: DynamoDB_20120810.<Op>`): the table named, or `table/T/index/I` for a query
//!   or scan of an index; `BatchGetItem`/`BatchWriteItem` on every table they name; a transaction's items each need
//!   their own action (`Put` → `dynamodb:PutItem`, `ConditionCheck` → `dynamodb:ConditionCheckItem`, `Get` →
//!   `dynamodb:GetItem`...) on their table, as "Using IAM with DynamoDB transactions" describes.
//! - SQS (JSON, `X-Amz-Target: AmazonSQS.<Op>`, or the older query form): the queue named by `QueueUrl`; a batch
//!   operation is authorized as its single form (`SendMessageBatch` → `sqs:SendMessage`).
//! - Secrets Manager (JSON 1.1, `X-Amz-Target: secretsmanager.<Op>`): the secret in `SecretId`.
//! - SES v2 (REST): `POST /v2/email/outbound-emails` → `ses:SendEmail` on the sender's domain identity and on the
//!   configuration set, when one is named.
//! - End User Messaging SMS (JSON 1.0, `X-Amz-Target: PinpointSMSVoiceV2.<Op>`, signed as `sms-voice`):
//!   `SendTextMessage` → `sms-voice:SendTextMessage` on the origination identity (a pool's id, or an ARN as given)
//!   and on the configuration set, when one is named.

use serde_json::Value;
use thiserror::Error;

/// The account and region every local ARN is in (infra/local/provision.py uses the same).
#[derive(Debug, Clone)]
pub struct Place {
    pub region: String,
    pub account: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub access_key: String,
    pub service: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub action: String,
    pub resource: String,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum Unreadable {
    #[error("the request names no operation the gate knows ({0})")]
    UnknownOperation(String),
    #[error("the request body is not what {0} expects")]
    Body(String),
}

/// The access key and service of a SigV4 `Authorization` header; `None` for an unsigned request.
pub fn signer(authorization: Option<&str>) -> Option<Signer> {
    let header = authorization?;
    let credential = header.split("Credential=").nth(1)?.split([',', ' ']).next()?;
    // <key>/<date>/<region>/<service>/aws4_request
    let parts: Vec<&str> = credential.split('/').collect();
    (parts.len() == 5).then(|| Signer {
        access_key: parts[0].to_owned(),
        service: parts[3].to_owned(),
    })
}

/// The request's parts that decide what it needs.
pub struct Call<'a> {
    pub service: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub target: Option<&'a str>,
    pub body: &'a [u8],
}

pub fn needs(call: &Call<'_>, place: &Place) -> Result<Vec<Need>, Unreadable> {
    match call.service {
        "dynamodb" => dynamodb(call, place),
        "sqs" => sqs(call, place),
        "secretsmanager" => secrets_manager(call, place),
        "ses" => ses(call, place),
        "sms-voice" => sms_voice(call, place),
        other => Err(Unreadable::UnknownOperation(format!("service {other}"))),
    }
}

fn operation<'a>(call: &Call<'a>) -> Result<&'a str, Unreadable> {
    call.target
        .and_then(|t| t.rsplit_once('.'))
        .map(|(_, op)| op)
        .ok_or_else(|| Unreadable::UnknownOperation(format!("{} {} without X-Amz-Target", call.method, call.path)))
}

fn json(call: &Call<'_>) -> Result<Value, Unreadable> {
    serde_json::from_slice(call.body).map_err(|_| Unreadable::Body(call.service.to_owned()))
}

fn need(action: impl Into<String>, resource: impl Into<String>) -> Need {
    Need {
        action: action.into(),
        resource: resource.into(),
    }
}

fn table_arn(name: &str, place: &Place) -> String {
    if name.starts_with("arn:") {
        name.to_owned()
    } else {
        format!("arn:aws:dynamodb:{}:{}:table/{name}", place.region, place.account)
    }
}

fn str_field<'a>(value: &'a Value, field: &str, service: &str) -> Result<&'a str, Unreadable> {
    value[field]
        .as_str()
        .ok_or_else(|| Unreadable::Body(format!("{service} ({field})")))
}

fn dynamodb(call: &Call<'_>, place: &Place) -> Result<Vec<Need>, Unreadable> {
    let op = operation(call)?;
    let body = json(call)?;
    let action = |name: &str| format!("dynamodb:{name}");
    match op {
        "BatchGetItem" | "BatchWriteItem" => {
            let tables = body["RequestItems"]
                .as_object()
                .ok_or_else(|| Unreadable::Body("dynamodb (RequestItems)".into()))?;
            Ok(tables.keys().map(|t| need(action(op), table_arn(t, place))).collect())
        }
        "TransactWriteItems" | "TransactGetItems" => {
            let items = body["TransactItems"]
                .as_array()
                .ok_or_else(|| Unreadable::Body("dynamodb (TransactItems)".into()))?;
            items
                .iter()
                .map(|item| {
                    let (kind, detail) = item
                        .as_object()
                        .and_then(|o| o.iter().next())
                        .ok_or_else(|| Unreadable::Body("dynamodb (a transaction item)".into()))?;
                    let item_action = match kind.as_str() {
                        "Put" => "PutItem",
                        "Update" => "UpdateItem",
                        "Delete" => "DeleteItem",
                        "ConditionCheck" => "ConditionCheckItem",
                        "Get" => "GetItem",
                        other => return Err(Unreadable::UnknownOperation(format!("transaction item {other}"))),
                    };
                    Ok(need(
                        action(item_action),
                        table_arn(str_field(detail, "TableName", "dynamodb")?, place),
                    ))
                })
                .collect()
        }
        "Query" | "Scan" => {
            let table = table_arn(str_field(&body, "TableName", "dynamodb")?, place);
            let resource = match body["IndexName"].as_str() {
                Some(index) => format!("{table}/index/{index}"),
                None => table,
            };
            Ok(vec![need(action(op), resource)])
        }
        "ListTables" | "DescribeLimits" | "DescribeEndpoints" => Ok(vec![need(action(op), "*")]),
        _ => Ok(vec![need(
            action(op),
            table_arn(str_field(&body, "TableName", "dynamodb")?, place),
        )]),
    }
}

fn sqs(call: &Call<'_>, place: &Place) -> Result<Vec<Need>, Unreadable> {
    // The JSON protocol names the operation in X-Amz-Target; the older query protocol in the form's Action.
    let (op, queue_url) = match call.target {
        Some(_) => {
            let body = json(call)?;
            (
                operation(call)?.to_owned(),
                body["QueueUrl"].as_str().map(str::to_owned),
            )
        }
        None => {
            let form: Vec<(String, String)> =
                serde_urlencoded::from_bytes(call.body).map_err(|_| Unreadable::Body("sqs (form)".into()))?;
            let get = |k: &str| form.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
            let op = get("Action").ok_or_else(|| Unreadable::UnknownOperation("sqs without Action".into()))?;
            (op, get("QueueUrl"))
        }
    };
    let authorized_as = match op.as_str() {
        "SendMessageBatch" => "SendMessage",
        "DeleteMessageBatch" => "DeleteMessage",
        "ChangeMessageVisibilityBatch" => "ChangeMessageVisibility",
        other => other,
    };
    let resource = match queue_url {
        Some(url) => {
            let name = url
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            format!("arn:aws:sqs:{}:{}:{name}", place.region, place.account)
        }
        None => "*".to_owned(),
    };
    Ok(vec![need(format!("sqs:{authorized_as}"), resource)])
}

fn secrets_manager(call: &Call<'_>, place: &Place) -> Result<Vec<Need>, Unreadable> {
    let op = operation(call)?;
    let body = json(call)?;
    let resource = match body["SecretId"].as_str() {
        Some(id) if id.starts_with("arn:") => id.to_owned(),
        // Called by name: AWS evaluates the secret's full ARN, which ends in six random characters. A policy that
        // names the full ARN cannot match the placeholder (stricter than AWS), one that ends in `*` does.
        Some(name) => format!(
            "arn:aws:secretsmanager:{}:{}:secret:{name}-??????",
            place.region, place.account
        ),
        None => "*".to_owned(),
    };
    Ok(vec![need(format!("secretsmanager:{op}"), resource)])
}

fn sms_voice(call: &Call<'_>, place: &Place) -> Result<Vec<Need>, Unreadable> {
    let op = operation(call)?;
    let body = json(call)?;
    let arn = |kind: &str, name: &str| {
        if name.starts_with("arn:") {
            name.to_owned()
        } else {
            format!("arn:aws:sms-voice:{}:{}:{kind}/{name}", place.region, place.account)
        }
    };
    match op {
        "SendTextMessage" => {
            let origination = str_field(&body, "OriginationIdentity", "sms-voice")?;
            let mut needs = vec![need("sms-voice:SendTextMessage", arn("pool", origination))];
            if let Some(set) = body["ConfigurationSetName"].as_str() {
                needs.push(need("sms-voice:SendTextMessage", arn("configuration-set", set)));
            }
            Ok(needs)
        }
        other => Err(Unreadable::UnknownOperation(format!("sms-voice {other}"))),
    }
}

fn ses(call: &Call<'_>, place: &Place) -> Result<Vec<Need>, Unreadable> {
    let arn = |kind: &str, name: &str| format!("arn:aws:ses:{}:{}:{kind}/{name}", place.region, place.account);
    match (call.method, call.path.trim_end_matches('/')) {
        ("POST", "/v2/email/outbound-emails") => {
            let body = json(call)?;
            let from = str_field(&body, "FromEmailAddress", "ses").unwrap_or_default();
            // "Name <user@domain>" or "user@domain": the identity that verifies it is the domain's.
            let address = from.rsplit('<').next().unwrap_or(from).trim_end_matches('>').trim();
            let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or(address);
            let mut needs = vec![need("ses:SendEmail", arn("identity", domain))];
            if let Some(set) = body["ConfigurationSetName"].as_str() {
                needs.push(need("ses:SendEmail", arn("configuration-set", set)));
            }
            Ok(needs)
        }
        (method, path) => Err(Unreadable::UnknownOperation(format!("ses {method} {path}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place() -> Place {
        Place {
            region: "us-east-1".into(),
            account: "123456789012".into(),
        }
    }

    fn dynamo(op: &str, body: Value) -> Vec<Need> {
        let body = body.to_string();
        let target = format!("DynamoDB_20120810.{op}");
        needs(
            &Call {
                service: "dynamodb",
                method: "POST",
                path: "/",
                target: Some(&target),
                body: body.as_bytes(),
            },
            &place(),
        )
        .unwrap()
    }

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/tours";

    #[test]
    fn the_signer_is_read_from_the_credential_scope() {
        let header = "AWS4-HMAC-SHA256 Credential=LOCALGETTOUR/20261206/us-east-1/dynamodb/aws4_request, \
                      SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(
            signer(Some(header)),
            Some(Signer {
                access_key: "LOCALGETTOUR".into(),
                service: "dynamodb".into()
            })
        );
        assert_eq!(signer(None), None);
        assert_eq!(signer(Some("Bearer x")), None);
    }

    #[test]
    fn a_dynamodb_read_needs_its_action_on_its_table_or_index() {
        assert_eq!(
            dynamo("GetItem", serde_json::json!({"TableName": "tours"})),
            vec![need("dynamodb:GetItem", TABLE)]
        );
        assert_eq!(
            dynamo("Query", serde_json::json!({"TableName": "tours", "IndexName": "gsi1"})),
            vec![need("dynamodb:Query", format!("{TABLE}/index/gsi1"))]
        );
        assert_eq!(
            dynamo(
                "BatchGetItem",
                serde_json::json!({"RequestItems": {"tours": {"Keys": []}}})
            ),
            vec![need("dynamodb:BatchGetItem", TABLE)]
        );
    }

    #[test]
    fn a_transaction_needs_each_item_s_own_action() {
        let needs = dynamo(
            "TransactWriteItems",
            serde_json::json!({"TransactItems": [
                {"Put": {"TableName": "tours"}},
                {"ConditionCheck": {"TableName": "tours"}},
                {"Delete": {"TableName": TABLE}},
            ]}),
        );
        assert_eq!(
            needs,
            vec![
                need("dynamodb:PutItem", TABLE),
                need("dynamodb:ConditionCheckItem", TABLE),
                need("dynamodb:DeleteItem", TABLE),
            ]
        );
    }

    #[test]
    fn an_sqs_batch_is_authorized_as_its_single_form_on_the_queue() {
        let body = serde_json::json!({"QueueUrl": "http://127.0.0.1:5050/123456789012/tour-sync"}).to_string();
        let call = Call {
            service: "sqs",
            method: "POST",
            path: "/",
            target: Some("AmazonSQS.SendMessageBatch"),
            body: body.as_bytes(),
        };
        assert_eq!(
            needs(&call, &place()).unwrap(),
            vec![need("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:tour-sync")]
        );
        let form = b"Action=ChangeMessageVisibility&QueueUrl=http%3A%2F%2Fh%2F1%2Fq";
        let call = Call {
            target: None,
            body: form,
            ..call
        };
        assert_eq!(
            needs(&call, &place()).unwrap(),
            vec![need(
                "sqs:ChangeMessageVisibility",
                "arn:aws:sqs:us-east-1:123456789012:q"
            )]
        );
    }

    #[test]
    fn an_email_needs_its_domain_identity_and_configuration_set() {
        let body = serde_json::json!({
            "FromEmailAddress": "Harbor View <tours@harbor.example>",
            "ConfigurationSetName": "local-tour-email"
        })
        .to_string();
        let call = Call {
            service: "ses",
            method: "POST",
            path: "/v2/email/outbound-emails",
            target: None,
            body: body.as_bytes(),
        };
        assert_eq!(
            needs(&call, &place()).unwrap(),
            vec![
                need(
                    "ses:SendEmail",
                    "arn:aws:ses:us-east-1:123456789012:identity/harbor.example"
                ),
                need(
                    "ses:SendEmail",
                    "arn:aws:ses:us-east-1:123456789012:configuration-set/local-tour-email"
                ),
            ]
        );
    }

    #[test]
    fn a_text_needs_its_pool_and_configuration_set_and_another_operation_is_unreadable() {
        let text = |origination: &str| {
            serde_json::json!({
                "DestinationPhoneNumber": "+15125550101", "OriginationIdentity": origination,
                "MessageBody": "hi", "ConfigurationSetName": "local-tour-texts"
            })
            .to_string()
        };
        let call = |body: &'static str, target: &'static str| Call {
            service: "sms-voice",
            method: "POST",
            path: "/",
            target: Some(target),
            body: body.as_bytes(),
        };
        let pool = Box::leak(text("pool-local").into_boxed_str());
        assert_eq!(
            needs(&call(pool, "PinpointSMSVoiceV2.SendTextMessage"), &place()).unwrap(),
            vec![
                need(
                    "sms-voice:SendTextMessage",
                    "arn:aws:sms-voice:us-east-1:123456789012:pool/pool-local"
                ),
                need(
                    "sms-voice:SendTextMessage",
                    "arn:aws:sms-voice:us-east-1:123456789012:configuration-set/local-tour-texts"
                ),
            ]
        );
        let by_arn = Box::leak(text("arn:aws:sms-voice:us-east-1:123456789012:pool/pool-x").into_boxed_str());
        assert_eq!(
            needs(&call(by_arn, "PinpointSMSVoiceV2.SendTextMessage"), &place()).unwrap()[0].resource,
            "arn:aws:sms-voice:us-east-1:123456789012:pool/pool-x"
        );
        assert!(needs(&call(pool, "PinpointSMSVoiceV2.PutOptedOutNumber"), &place()).is_err());
    }

    #[test]
    fn a_secret_read_by_name_is_its_arn_with_an_unknown_suffix() {
        let body = serde_json::json!({"SecretId": "acct-401"}).to_string();
        let call = Call {
            service: "secretsmanager",
            method: "POST",
            path: "/",
            target: Some("secretsmanager.GetSecretValue"),
            body: body.as_bytes(),
        };
        assert_eq!(
            needs(&call, &place()).unwrap(),
            vec![need(
                "secretsmanager:GetSecretValue",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:acct-401-??????"
            )]
        );
    }

    #[test]
    fn an_unknown_operation_is_reported_not_guessed() {
        let call = Call {
            service: "ses",
            method: "DELETE",
            path: "/v2/email/identities/x",
            target: None,
            body: b"",
        };
        assert!(matches!(needs(&call, &place()), Err(Unreadable::UnknownOperation(_))));
    }
}
