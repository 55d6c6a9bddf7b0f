//! One adapter per port: DynamoDB, SQS, SES, Secrets Manager and ResMan.

pub mod callback;
pub mod dynamo;
pub mod outbound;
pub mod resman;
pub mod secrets;
pub mod ses;
pub mod sqs;
pub mod staff_webhook;
