//! How fast `e export` and `e import` move images, side by side with `docker save` and
//! `docker load` of the same images, in one run on the real engine.
//!
//! Run it with `cargo bench --bench offline` (needs a Docker engine and the docker CLI). Cargo
//! builds the `e` binary with the bench profile (release settings) and tells the bench its path
//! in `CARGO_BIN_EXE_e`.
//!
//! The images are built here and removed afterwards: `e-bench/offline-big:1`, `FROM scratch`
//! with three layers of random bytes (uncompressible, [`BIG_LAYER_MB`] MiB each), and three
//! images the size of the example modules that add a few random megabytes on top of it, so the
//! big layers are shared and must be written once. A temporary repository lists one module per
//! image; `e export --all` archives them. Each round runs `docker save` of the four images and
//! `e export`, then, each time with the images removed from the engine first, `docker load` of
//! docker's file and `e import` of e's archive into a fresh directory; which of docker and e
//! goes first alternates from round to round. The table shows the median of [`ROUNDS`] rounds,
//! the rate in MB of the file per second, and the ratio e / docker. `e import` verifies the
//! whole archive before it loads anything; its phases are shown apart, from e's summary lines.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Timed rounds; the median is reported.
const ROUNDS: usize = 5;
/// The size of each of the big image's three layers.
const BIG_LAYER_MB: usize = 64;
/// The size of the layer each small image adds.
const SMALL_LAYER_MB: usize = 2;
/// The slowest e may be, relative to docker.
const TARGET_RATIO: f64 = 1.2;

const BIG: &str = "e-bench/offline-big:1";
const SMALL: [&str; 3] = [
    "e-bench/offline-small-1:1",
    "e-bench/offline-small-2:1",
    "e-bench/offline-small-3:1",
];

fn images() -> Vec<&'static str> {
    std::iter::once(BIG).chain(SMALL).collect()
}

/// Removes the bench's images when the bench ends, even if it fails midway.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        remove_images();
    }
}

fn main() {
    let binary = Path::new(env!("CARGO_BIN_EXE_e"));
    let docker_version = run(Command::new("docker").args([
        "version",
        "--format",
        "{{.Server.Version}} (API {{.Server.APIVersion}})",
    ]));
    let directory = tempfile::tempdir().expect("a temporary directory for the archives");
    println!("e export/import against docker save/load: median of {ROUNDS} rounds");
    println!("binary: {}", binary.display());
    println!(
        "engine: Docker {}",
        String::from_utf8_lossy(&docker_version.stdout).trim()
    );
    println!("machine: {}", machine());

    let _cleanup = Cleanup;
    remove_images();
    let started = Instant::now();
    build_images(directory.path());
    let unique_mb = (3 * BIG_LAYER_MB + SMALL.len() * SMALL_LAYER_MB) as f64 * 1.048_576;
    println!(
        "images: {} with 3 layers of {BIG_LAYER_MB} MiB, and {} images of one {SMALL_LAYER_MB} MiB layer on top of it ({unique_mb:.0} MB of layers; built in {:.1} s)\n",
        BIG,
        SMALL.len(),
        started.elapsed().as_secs_f64()
    );
    let repository = directory.path().join("repository.yaml");
    fs::write(&repository, repository_text()).expect("write the bench repository");

    let docker_tar = directory.path().join("docker.tar");
    let e_tar = directory.path().join("e.tar");
    let mut save = Vec::new();
    let mut export = Vec::new();
    let mut load = Vec::new();
    let mut import = Vec::new();
    let mut verify = Vec::new();
    let mut import_load = Vec::new();
    for round in 0..ROUNDS {
        // Which of the two goes first alternates, so that neither always meets a busier engine.
        let docker_first = round % 2 == 0;
        for docker_turn in [docker_first, !docker_first] {
            if docker_turn {
                let mut docker_save = Command::new("docker");
                docker_save
                    .arg("save")
                    .args(images())
                    .arg("-o")
                    .arg(&docker_tar);
                save.push(timed(&mut docker_save).0);
            } else {
                let mut e_export = e(binary, &repository, directory.path());
                e_export
                    // Like with like: `docker save` carries no e binary.
                    .args(["export", "--all", "--force", "--without-e", "--out"])
                    .arg(&e_tar);
                export.push(timed(&mut e_export).0);
            }
        }
        for docker_turn in [docker_first, !docker_first] {
            remove_images();
            if docker_turn {
                let mut docker_load = Command::new("docker");
                docker_load.arg("load").arg("-i").arg(&docker_tar);
                load.push(timed(&mut docker_load).0);
            } else {
                let site = directory.path().join(format!("import-{round}"));
                fs::create_dir_all(&site).expect("create the import directory");
                let mut e_import = e(binary, &site.join("repository.yaml"), &site);
                e_import.arg("import").arg(&e_tar);
                let (time, output) = timed(&mut e_import);
                import.push(time);
                let said = String::from_utf8_lossy(&output.stderr).into_owned();
                verify.push(phase(&said, "verifying"));
                import_load.push(phase(&said, "loading images"));
            }
        }
    }

    let docker_size = fs::metadata(&docker_tar).expect("docker's file").len();
    let e_size = fs::metadata(&e_tar).expect("e's archive").len();
    println!(
        "files: docker save {:.1} MB, e export {:.1} MB (images.tar, repository, manifest)\n",
        mb(docker_size),
        mb(e_size)
    );
    let rows = [
        (
            "docker save",
            "e export",
            median(&save),
            median(&export),
            docker_size,
            e_size,
        ),
        (
            "docker load",
            "e import",
            median(&load),
            median(&import),
            docker_size,
            e_size,
        ),
    ];
    println!(
        "{:<28} {:>18} {:>18} {:>8}",
        "operation", "docker", "e", "e/docker"
    );
    let mut met = true;
    for (docker_name, e_name, docker_time, e_time, docker_bytes, e_bytes) in rows {
        let ratio = e_time.as_secs_f64() / docker_time.as_secs_f64();
        met &= ratio <= TARGET_RATIO;
        println!(
            "{:<28} {:>18} {:>18} {:>8.2}",
            format!("{docker_name} / {e_name}"),
            rate(docker_time, docker_bytes),
            rate(e_time, e_bytes),
            ratio
        );
    }
    println!(
        "\ne import: verifying {:.2} s, then streaming the images to the engine {:.2} s (medians of e's own summary lines; the engine goes on unpacking after the stream ends)",
        median(&verify).as_secs_f64(),
        median(&import_load).as_secs_f64()
    );
    println!(
        "rounds (s): save {} | export {} | load {} | import {}",
        list(&save),
        list(&export),
        list(&load),
        list(&import)
    );
    println!(
        "target: e at most {TARGET_RATIO} times docker: {}",
        if met { "met" } else { "NOT met" }
    );
}

/// One module per image; e exports them with `--all`.
fn repository_text() -> String {
    let mut text =
        String::from("version: v1\nkind: Repository\nname: offline-bench\ncomponents:\n");
    for (i, image) in images().iter().enumerate() {
        text.push_str(&format!(
            "  - name: bench-{i}\n    type: docker\n    versions:\n      - version: 1.0.0\n        image: {image}\n        labels: {{kind: bench}}\n        commands: [{{name: apply, command: apply}}]\n"
        ));
    }
    text
}

/// Builds the big image and the small ones on top of it, from random bytes.
fn build_images(directory: &Path) {
    let context = directory.join("big");
    fs::create_dir_all(&context).expect("create the build context");
    let mut random =
        fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(std::process::id()));
    let mut dockerfile = String::from("FROM scratch\n");
    for layer in ["a", "b", "c"] {
        write_random(&context.join(layer), BIG_LAYER_MB, &mut random);
        dockerfile.push_str(&format!("COPY {layer} /{layer}\n"));
    }
    fs::write(context.join("Dockerfile"), dockerfile).expect("write the Dockerfile");
    build(&context, BIG);
    for image in SMALL {
        let context = directory.join(image.replace(['/', ':'], "-"));
        fs::create_dir_all(&context).expect("create the build context");
        write_random(&context.join("small"), SMALL_LAYER_MB, &mut random);
        fs::write(
            context.join("Dockerfile"),
            format!("FROM {BIG}\nCOPY small /small\n"),
        )
        .expect("write the Dockerfile");
        build(&context, image);
    }
}

fn build(context: &Path, tag: &str) {
    run(Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(context));
}

/// Writes `megabytes` MiB of random bytes: incompressible, and new on every run.
fn write_random(path: &Path, megabytes: usize, random: &mut fastrand::Rng) {
    let mut file = std::io::BufWriter::new(fs::File::create(path).expect("create a layer file"));
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..megabytes {
        random.fill(&mut block);
        file.write_all(&block).expect("write a layer file");
    }
    file.flush().expect("write a layer file");
}

fn remove_images() {
    let _ = Command::new("docker")
        .args(["rmi", "-f"])
        .args(images())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn e(binary: &Path, repository: &Path, directory: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .current_dir(directory)
        .env("E_REPOSITORY", repository)
        .env("E_SHARED", directory.join("shared"))
        .env("E_PROGRESS", "0")
        .env_remove("E_SECRETS");
    command
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("the command starts");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn timed(command: &mut Command) -> (Duration, Output) {
    let started = Instant::now();
    let output = run(command);
    (started.elapsed(), output)
}

/// The seconds of one of e's summary lines (`verifying: 210.0 MB in 0.4 s (...)`).
fn phase(stderr: &str, label: &str) -> Duration {
    stderr
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{label}: ")))
        .and_then(|rest| rest.split(" in ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|seconds| seconds.parse::<f64>().ok())
        .map_or(Duration::ZERO, Duration::from_secs_f64)
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn rate(time: Duration, bytes: u64) -> String {
    format!(
        "{:.2} s {:>5.0} MB/s",
        time.as_secs_f64(),
        mb(bytes) / time.as_secs_f64()
    )
}

fn list(samples: &[Duration]) -> String {
    samples
        .iter()
        .map(|d| format!("{:.2}", d.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn machine() -> String {
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    format!(
        "{model}, {cpus} CPUs, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}
