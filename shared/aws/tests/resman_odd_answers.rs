//! The ResMan adapter against answers the sandbox never gives: a proxy's HTML page, XML cut short, silence.
//! wiremock plays the server.

use chrono::{TimeZone, Utc};
use std::time::Duration;
use tour_aws::resman::{HttpResMan, ResManCredentials, ResManSettings};
use tour_core::domain::resman::ProspectLookup;
use tour_core::domain::resman::ResManSite;
use tour_core::domain::{Email, ResManPropertyId, UtcWindow};
use tour_core::ports::{ResManError, ResManGateway};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn gateway(server: &MockServer, timeout: Duration) -> HttpResMan {
    let mut settings = ResManSettings::new(
        server.uri(),
        ResManCredentials {
            integration_partner_id: "p".into(),
            api_key: "k".into(),
            account_id: 1,
        },
    );
    settings.timeout = timeout;
    HttpResMan::new(settings).unwrap()
}

fn property() -> ResManSite {
    ResManSite::new(None, ResManPropertyId::parse("P-1").unwrap())
}

fn by_email() -> ProspectLookup {
    ProspectLookup::Email(Email::parse("ana@example.com").unwrap())
}

#[tokio::test]
async fn an_html_error_page_with_http_200_is_malformed_not_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html><body><h1>Maintenance</h1></body></html>"))
        .mount(&server)
        .await;
    let err = gateway(&server, Duration::from_secs(2))
        .find_prospects(&property(), &by_email())
        .await
        .unwrap_err();
    assert!(matches!(err, ResManError::Malformed(_)), "{err:?}");
    assert!(err.is_retryable() && err.may_have_applied());
}

#[tokio::test]
async fn an_html_gateway_page_with_http_503_is_a_retryable_server_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(503).set_body_string("<html><body><h1>503 Service Unavailable</h1></body></html>"),
        )
        .mount(&server)
        .await;
    let err = gateway(&server, Duration::from_secs(2))
        .employees(&property())
        .await
        .unwrap_err();
    assert_eq!(err, ResManError::Server { status: 503 });
}

#[tokio::test]
async fn xml_cut_short_is_malformed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/MITS/SearchProspects"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("<ResMan><Status>Success</Status><Response><LeadManagement><Prospects><Prospect>"),
        )
        .mount(&server)
        .await;
    let err = gateway(&server, Duration::from_secs(2))
        .find_prospects(&property(), &by_email())
        .await
        .unwrap_err();
    assert!(matches!(err, ResManError::Malformed(_)), "{err:?}");
}

#[tokio::test]
async fn json_garbage_is_malformed_and_status_error_is_a_refusal_with_its_description() {
    let server = MockServer::start().await;
    Mock::given(path("/Leasing/GetEmployees"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"Employees\": ["))
        .mount(&server)
        .await;
    Mock::given(path("/Leasing/GetProspectSources"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"MethodName":"GetProspectSources","Status":"Failed","ErrorDescription":"Property not found"}"#,
        ))
        .mount(&server)
        .await;
    let resman = gateway(&server, Duration::from_secs(2));
    assert!(matches!(
        resman.employees(&property()).await.unwrap_err(),
        ResManError::Malformed(_)
    ));
    assert_eq!(
        resman.prospect_sources(&property()).await.unwrap_err(),
        ResManError::Rejected {
            description: "Property not found".into()
        }
    );
}

#[tokio::test]
async fn silence_past_the_client_timeout_is_a_timeout_that_may_have_applied() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let err = gateway(&server, Duration::from_millis(300))
        .find_prospects(&property(), &by_email())
        .await
        .unwrap_err();
    assert_eq!(err, ResManError::Timeout(Duration::from_millis(300)));
    assert!(err.may_have_applied());
}

#[tokio::test]
async fn a_closed_port_is_unreachable_and_certainly_not_applied() {
    // wiremock pools its servers, so a dropped one may still answer: take a port and let it go instead.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let settings = ResManSettings::new(
        uri,
        ResManCredentials {
            integration_partner_id: "p".into(),
            api_key: "k".into(),
            account_id: 1,
        },
    );
    let err = HttpResMan::new(settings)
        .unwrap()
        .employees(&property())
        .await
        .unwrap_err();
    assert!(matches!(err, ResManError::Unreachable(_)), "{err:?}");
    assert!(err.is_retryable() && !err.may_have_applied());
}

#[tokio::test]
async fn credentials_go_in_the_form_body_and_never_in_the_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("ApiKey=k"))
        .and(body_string_contains("IntegrationPartnerID=p"))
        .and(body_string_contains("PropertyID=P-1"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"Status":"Error","ErrorDescription":"Invalid IntegrationPartnerID, ApiKey or AccountID"}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = gateway(&server, Duration::from_secs(2))
        .employees(&property())
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("ApiKey=k"));
    assert!(matches!(err, ResManError::Rejected { .. }));
}

#[tokio::test]
async fn a_window_refused_as_too_wide_is_halved_until_each_part_is_read() {
    let server = MockServer::start().await;
    // Refuse any window of more than 3 days; answer an empty search otherwise.
    let empty = r#"<ResMan><MethodName>SearchProspects</MethodName><Status>Success</Status><Response><LeadManagement><Prospects/></LeadManagement></Response></ResMan>"#;
    Mock::given(path("/MITS/SearchProspects"))
        .respond_with(move |req: &wiremock::Request| {
            let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&req.body).unwrap();
            let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
            let parse = |v: String| chrono::NaiveDateTime::parse_from_str(&v, "%Y-%m-%dT%H:%M:%S").unwrap();
            let span = parse(get("ModifiedEndDateTime")) - parse(get("ModifiedStartDateTime"));
            if span > chrono::Duration::days(3) {
                ResponseTemplate::new(502).set_body_string("buffer overflow")
            } else {
                ResponseTemplate::new(200).set_body_string(empty)
            }
        })
        .mount(&server)
        .await;
    let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let window = UtcWindow::starting_at(start, chrono::Duration::days(9)).unwrap();
    let found = gateway(&server, Duration::from_secs(2))
        .changed_prospects(&property(), window)
        .await
        .unwrap();
    assert!(found.is_empty());
    // 9 days -> 4.5 + 4.5 -> 2.25 x 4: one refusal, two refusals, four reads.
    let requests = server.received_requests().await.unwrap();
    let spans: Vec<String> = requests
        .iter()
        .map(|r| {
            let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&r.body).unwrap();
            form.iter()
                .filter(|(k, _)| k.starts_with("Modified"))
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    assert_eq!(requests.len(), 7, "{spans:#?}");
}

/// Two customers' accounts, each with its own key, as the secrets would give them.
struct TwoAccounts;

#[async_trait::async_trait]
impl tour_aws::resman::AccountKeys for TwoAccounts {
    async fn credentials(
        &self,
        account: tour_core::domain::resman::ResManAccountId,
    ) -> Result<tour_aws::resman::AccountCredentials, tour_aws::resman::AccountKeyError> {
        let key = |k: &str| Some(k.to_owned());
        match account.0 {
            401 => Ok(tour_aws::resman::AccountCredentials {
                account_id: 401,
                api_key: key("key-of-401"),
            }),
            402 => Ok(tour_aws::resman::AccountCredentials {
                account_id: 402,
                api_key: key("key-of-402"),
            }),
            // A secret copied from another account's: it names 401.
            409 => Ok(tour_aws::resman::AccountCredentials {
                account_id: 401,
                api_key: key("key-of-401"),
            }),
            _ => Err(tour_aws::resman::AccountKeyError::Missing {
                account,
                reason: "there is no secret".into(),
            }),
        }
    }
}

fn site(account: u64, property: &str) -> ResManSite {
    ResManSite::new(
        Some(tour_core::domain::resman::ResManAccountId(account)),
        ResManPropertyId::parse(property).unwrap(),
    )
}

#[tokio::test]
async fn a_call_for_a_property_carries_its_own_accounts_id_and_key_and_never_another_accounts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"MethodName":"GetEmployees","Status":"Success","Employees":[]}"#),
        )
        .mount(&server)
        .await;
    let resman = gateway(&server, Duration::from_secs(2)).with_accounts(std::sync::Arc::new(TwoAccounts));
    resman.employees(&site(401, "P-A")).await.unwrap();
    resman.employees(&site(402, "P-B")).await.unwrap();
    resman.employees(&property()).await.unwrap();
    let bodies: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(bodies.len(), 3);
    let (a, b, default) = (&bodies[0], &bodies[1], &bodies[2]);
    assert!(
        a.contains("AccountID=401") && a.contains("ApiKey=key-of-401") && a.contains("PropertyID=P-A"),
        "{a}"
    );
    assert!(!a.contains("402") && !a.contains("ApiKey=k&"), "{a}");
    assert!(
        b.contains("AccountID=402") && b.contains("ApiKey=key-of-402") && b.contains("PropertyID=P-B"),
        "{b}"
    );
    assert!(!b.contains("401"), "{b}");
    assert!(
        default.contains("AccountID=1") && default.contains("ApiKey=k&"),
        "{default}"
    );
    assert!(!default.contains("key-of-"), "{default}");
}

#[tokio::test]
async fn an_account_without_credentials_is_refused_naming_it_and_nothing_is_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&server)
        .await;
    let without = gateway(&server, Duration::from_secs(2));
    let err = without.employees(&site(401, "P-A")).await.unwrap_err();
    assert!(
        matches!(&err, ResManError::Rejected { description } if description.contains("401")),
        "{err:?}"
    );
    let resman = gateway(&server, Duration::from_secs(2)).with_accounts(std::sync::Arc::new(TwoAccounts));
    let err = resman.employees(&site(403, "P-C")).await.unwrap_err();
    assert!(
        matches!(&err, ResManError::Rejected { description } if description.contains("ResMan account 403")),
        "{err:?}"
    );
    // A secret that names another account is not used for this one.
    let err = resman.employees(&site(409, "P-D")).await.unwrap_err();
    assert!(
        matches!(&err, ResManError::Rejected { description } if description.contains("names account 401")),
        "{err:?}"
    );
    assert!(!err.is_retryable(), "an operator must add the secret first");
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "nothing went to ResMan"
    );
}
