//! `e version`: e's own version, the engine it uses (context, address, how it is reached) and
//! what that engine says of itself, like `docker version`, with the API version they agreed on.
//! When the engine cannot be reached, the client part is printed and then the error (exit 1),
//! so a user sees which engine e tried.

use std::process::ExitCode;

use serde::Serialize;

use crate::Context;
use crate::cli::{Format, VersionArgs};
use crate::output;
use crate::runtime::Transfer;
use crate::runtime::docker::{self, EngineVersion};
use crate::runtime::endpoint::{self, Endpoint};

/// The whole answer, for `-o json` and `-o yaml`.
#[derive(Serialize)]
struct Report {
    client: Client,
    /// `None` when the engine could not be reached.
    engine: Option<EngineVersion>,
}

/// e, and which engine it uses.
#[derive(Serialize)]
struct Client {
    version: &'static str,
    /// The Engine API version e speaks: the newest it knows until it reached the engine, then
    /// the one agreed with it (the engine's, when older).
    api_version: String,
    /// The newest Engine API version e knows.
    max_api_version: String,
    /// `None` when the endpoint could not be resolved (an unknown context).
    context: Option<String>,
    chosen_by: Option<String>,
    host: Option<String>,
    transport: Option<String>,
    /// How runs hand their private copy of the shared directory to the engine.
    transfer: Option<String>,
}

impl Client {
    fn new(endpoint: Option<&Endpoint>, forced: Option<Transfer>) -> Client {
        Client {
            version: env!("CARGO_PKG_VERSION"),
            api_version: docker::client_api_version(),
            max_api_version: docker::client_api_version(),
            context: endpoint.map(|e| e.context.clone()),
            chosen_by: endpoint.map(|e| e.chosen_by.to_string()),
            host: endpoint.map(|e| e.host.clone()),
            transport: endpoint.map(|e| e.transport().to_string()),
            transfer: endpoint.map(|e| match forced {
                Some(transfer) => format!("{} (--transfer)", transfer.name()),
                None => e.default_transfer().name().to_owned(),
            }),
        }
    }

    /// The `Client:` block of the table format.
    fn text(&self) -> String {
        let api = if self.api_version == self.max_api_version {
            self.api_version.clone()
        } else {
            format!(
                "{} (downgraded from {})",
                self.api_version, self.max_api_version
            )
        };
        let mut text = format!(
            "Client:\n Version:      {}\n API version:  {api}\n",
            self.version
        );
        if let (Some(context), Some(chosen_by), Some(host), Some(transport), Some(transfer)) = (
            &self.context,
            &self.chosen_by,
            &self.host,
            &self.transport,
            &self.transfer,
        ) {
            let why = match chosen_by.as_str() {
                "default" => String::new(),
                chosen_by => format!(" (chosen by {chosen_by})"),
            };
            text += &format!(
                " Context:      {context}{why}\n Engine:       {host}\n Transport:    {transport}\n Run copies:   {transfer}\n"
            );
        }
        text
    }
}

/// The `Engine:` block of the table format.
fn engine_text(engine: &EngineVersion) -> String {
    format!(
        "\nEngine:\n Product:      {}\n Version:      {}\n API version:  {} (minimum {})\n OS/Arch:      {}/{}\n Kernel:       {}\n",
        engine.product,
        engine.version,
        engine.api_version,
        engine.min_api_version,
        engine.os,
        engine.arch,
        engine.kernel
    )
}

/// Prints the versions; an engine that cannot be reached is an error after the client part.
pub async fn run(args: VersionArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let format = args.output;
    let resolved = endpoint::from_environment();
    let mut client = Client::new(resolved.as_ref().ok(), context.transfer);
    let answered = match resolved {
        Ok(endpoint) => docker::connect_to(endpoint).await,
        Err(err) => Err(err),
    };
    let engine = match answered {
        Ok(engine) => {
            client.api_version = engine.api_version();
            engine.version().clone()
        }
        Err(err) => {
            if format == Format::Table {
                output::data(&client.text())?;
            }
            let report = Report {
                client,
                engine: None,
            };
            if let Some(text) = output::serialized(format, &report)? {
                output::data(&text)?;
            }
            return Err(err);
        }
    };
    let text = client.text() + &engine_text(&engine);
    let report = Report {
        client,
        engine: Some(engine),
    };
    match output::serialized(format, &report)? {
        Some(serialized) => output::data(&serialized)?,
        None => output::data(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}
