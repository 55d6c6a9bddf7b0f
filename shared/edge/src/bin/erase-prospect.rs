//! `erase-prospect EMAIL`: a data-subject request. Removes, at once, the personal data (name, e-mail, phone, unit
//! preferences, special requests, staff notes, and the notes in saved answers) of every tour booked with EMAIL from the table named by `TABLE_NAME`, and says
//! what it removed. The tours stay, so the property's counts do not change. ResMan's guest card is the property's
//! own record and is not touched: the property handles it in ResMan. `make erase-prospect EMAIL=...` runs it
//! against the local stack.

use std::process::ExitCode;
use tour_aws::dynamo::DynamoStore;
use tour_core::app::privacy::erase_prospect;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [email] = args.as_slice() else {
        eprintln!("usage: erase-prospect EMAIL   (TABLE_NAME and the AWS environment must be set)");
        return ExitCode::from(2);
    };
    let Ok(table) = tour_edge::config::required("TABLE_NAME") else {
        eprintln!("TABLE_NAME is not set");
        return ExitCode::from(2);
    };
    let store = DynamoStore::new(&tour_edge::config::aws().await, table);
    match erase_prospect(&store, email).await {
        Ok(tours) if tours.is_empty() => {
            println!("No tour holds personal data for that address: nothing to remove.");
            ExitCode::SUCCESS
        }
        Ok(tours) => {
            println!(
                "Removed the name, e-mail, phone, unit preferences, special requests and staff notes (also from saved \
                 answers) of {} tour(s):",
                tours.len()
            );
            for tour in &tours {
                println!("  {tour}");
            }
            println!("The tours themselves stay (without personal data), so the property's counts are unchanged.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("erase-prospect: {e}");
            ExitCode::FAILURE
        }
    }
}
