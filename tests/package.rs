//! The Debian package (`scripts/package`, `[package.metadata.deb]` in
//! Cargo.toml, `debian/`), on this machine: root on a throwaway Debian (CI).
//!
//! Built once, from the binary this test suite already built
//! (`scripts/package --profile <this profile> --no-build --fast`): a release
//! build would cost minutes of CPU for the same packaging steps. Then:
//!
//! - `lintian` reports no error and no warning (the accepted ones are
//!   overridden, with the reason, in `debian/anyvip.lintian-overrides`);
//! - `dpkg -i` installs it: `anyvip version` from /usr/bin, the man pages
//!   found by `man -w` (anyvip.toml(5) carries every section and every key
//!   of docs/configuration.md), bash completion that completes, zsh and fish
//!   files where those shells look, the unit as config/anyvip.service with
//!   the package's paths, passing `systemd-analyze verify`, installed but not
//!   enabled; user anyvip, /etc/anyvip root:anyvip 0750, the conffile 0640,
//!   also after installing it again (the upgrade path);
//! - `dpkg --purge` leaves nothing named anyvip behind under /etc, /usr,
//!   /var/lib or /run, no statoverride and no dpkg state. User and group
//!   anyvip stay, as Debian packages' system users do (debian/README.Debian).
//!
//! `lintian`, `dpkg`, `man` and `systemd-analyze` must be installed (scripts/test
//! does it): a missing tool fails the test. A machine where anyvip is already
//! installed (package or by hand) fails it too, untouched.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const UNIT: &str = "/usr/lib/systemd/system/anyvip.service";
const CONFIG_DIR: &str = "/etc/anyvip";
const CONFFILE: &str = "/etc/anyvip/anyvip.toml";
/// Where a trace of the package would be; /run for /run/anyvip.
const SWEPT: [&str; 4] = ["/etc", "/usr", "/var/lib", "/run"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Run a tool; one that is not installed fails the test.
fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("{shown}: not installed (scripts/test installs it)")
        }
        Err(e) => panic!("{shown}: {e}"),
    }
}

fn said(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn success(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = run(cmd);
    assert!(out.status.success(), "{shown}: {}", said(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The package, built once for both tests.
fn deb() -> &'static Path {
    static DEB: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, deb) = DEB.get_or_init(|| {
        // The profile of the binary under test: target/<dir>/anyvip.
        let bin = Path::new(env!("CARGO_BIN_EXE_anyvip"));
        let profile = match bin
            .parent()
            .and_then(Path::file_name)
            .and_then(|d| d.to_str())
        {
            Some("debug") => "dev",
            Some(dir) => dir,
            None => panic!("{}: not in a profile directory", bin.display()),
        };
        let out = tempfile::tempdir().expect("temp dir");
        success(
            Command::new(root().join("scripts/package"))
                .args(["--profile", profile, "--no-build", "--fast", "--output"])
                .arg(out.path()),
        );
        let debs: Vec<PathBuf> = std::fs::read_dir(out.path())
            .expect("the output directory")
            .map(|e| e.expect("an entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "deb"))
            .collect();
        let [deb] = debs.as_slice() else {
            panic!("scripts/package made {debs:?}, not one .deb");
        };
        let deb = deb.clone();
        (out, deb)
    });
    deb
}

#[test]
fn lintian_finds_no_error_and_no_warning_in_the_package() {
    let out = run(Command::new("lintian").arg(deb()));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let complaints: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("E: ") || l.starts_with("W: "))
        .collect();
    assert!(complaints.is_empty(), "lintian: {}", said(&out));
    // 1: error tags (above); 2: lintian itself failed (e.g. could not unpack).
    assert!(out.status.success(), "lintian: {}", said(&out));
}

/// `dpkg --purge` on drop: a failed check leaves no half-installed package.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "anyvip"]).output();
    }
}

/// Every path under [`SWEPT`] whose name contains "anyvip".
fn traces() -> BTreeSet<String> {
    // find exits non-zero when a path vanishes under it (other processes'
    // /run files): what it printed is still the answer.
    let out = run(Command::new("find")
        .args(SWEPT)
        .args(["-name", "*anyvip*", "-print"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// dpkg's word for the package: installed, config-files, not-installed, ...
fn package_status() -> String {
    let out = run(Command::new("dpkg-query").args(["-W", "-f=${db:Status-Status}", "anyvip"]));
    let status = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // dpkg-query fails for a package it has forgotten (purged, or never seen)
    if !out.status.success() || status.is_empty() {
        return "not-installed".to_owned();
    }
    status
}

fn statoverrides() -> Vec<String> {
    // Exits 1 when there is none.
    let out = run(Command::new("dpkg-statoverride").arg("--list"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("anyvip"))
        .map(str::to_owned)
        .collect()
}

/// The settings of a unit file: no comments, no blank lines.
fn settings(unit: &str) -> Vec<String> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn package_installs_not_enabled_and_purge_leaves_nothing_behind() {
    let status = package_status();
    assert!(
        status == "not-installed",
        "anyvip is {status} on this machine: this test installs and purges it (dpkg --purge anyvip first)"
    );
    for path in ["/usr/bin/anyvip", CONFIG_DIR] {
        assert!(
            !Path::new(path).exists(),
            "{path} exists (installed by hand?): this test would overwrite and purge it"
        );
    }
    let deb = deb();
    let before = traces();

    let installed = Installed;
    success(Command::new("dpkg").arg("-i").arg(deb));
    let files: Vec<PathBuf> = success(Command::new("dpkg").args(["-L", "anyvip"]))
        .lines()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect();

    // The binary, from PATH's /usr/bin.
    assert_eq!(
        success(Command::new("/usr/bin/anyvip").arg("version")),
        format!("anyvip {}\n", env!("CARGO_PKG_VERSION"))
    );

    // Man pages: every one man-db finds by name; the configuration reference
    // is all there.
    let pages: Vec<String> = files
        .iter()
        .filter(|p| p.starts_with("/usr/share/man"))
        .filter_map(|p| {
            p.file_name()?
                .to_str()?
                .strip_suffix(".gz")
                .map(str::to_owned)
        })
        .collect();
    for page in ["anyvip.8", "anyvip-drain.8", "anyvip.toml.5"] {
        assert!(pages.iter().any(|p| p == page), "{page} not in {pages:?}");
    }
    for page in &pages {
        let (name, section) = page.rsplit_once('.').expect("name.section");
        let found = success(Command::new("man").args(["-w", section, name]));
        assert_eq!(
            found.trim(),
            format!("/usr/share/man/man{section}/{page}.gz"),
            "man -w {section} {name}"
        );
    }
    let render = |path: &str| {
        // -l: the file itself, so man-db writes no formatted copy to its cache
        success(
            Command::new("man")
                .env("MANWIDTH", "200")
                .args(["-l", path]),
        )
    };
    let anyvip_8 = render("/usr/share/man/man8/anyvip.8.gz");
    for text in ["anyvip-drain(8)", "EXIT STATUS", "anyvip.toml(5)"] {
        assert!(
            anyvip_8.contains(text),
            "anyvip(8) lacks {text}:\n{anyvip_8}"
        );
    }
    let anyvip_toml_5 = render("/usr/share/man/man5/anyvip.toml.5.gz");
    let reference = read(root().join("docs/configuration.md"));
    let sections: Vec<String> = reference
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|h| h.replace('`', ""))
        .collect();
    assert!(
        !sections.is_empty(),
        "docs/configuration.md has no ## sections"
    );
    // Every key of its tables (their first column), which the page lists as
    // entries rather than tables (debian/man-tables.lua).
    let keys: Vec<String> = reference
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(key, _)| key.to_owned())
        .collect();
    assert!(
        !keys.is_empty(),
        "docs/configuration.md has no table of keys"
    );
    for text in sections
        .iter()
        .chain(&keys)
        .map(String::as_str)
        .chain(["NAME", "/etc/anyvip/anyvip.toml"])
    {
        assert!(
            anyvip_toml_5.contains(text),
            "anyvip.toml(5) lacks {text:?}:\n{anyvip_toml_5}"
        );
    }

    // Completions: bash completes a command; zsh and fish files are where
    // Debian's zsh and fish look. The hidden `generate` is offered nowhere.
    let bash = success(Command::new("bash").args([
        "-c",
        "source /usr/share/bash-completion/completions/anyvip; \
         COMP_WORDS=(anyvip dr); COMP_CWORD=1; COMP_LINE='anyvip dr'; COMP_POINT=9; \
         $(complete -p anyvip | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p') anyvip dr anyvip; \
         echo \"${COMPREPLY[*]}\"",
    ]));
    assert_eq!(bash.trim(), "drain", "bash completion of `anyvip dr`");
    let zsh = read("/usr/share/zsh/vendor-completions/_anyvip");
    assert!(zsh.starts_with("#compdef anyvip"), "{zsh}");
    let fish = read("/usr/share/fish/vendor_completions.d/anyvip.fish");
    assert!(fish.contains("complete -c anyvip"), "{fish}");
    for (shell, text) in [("zsh", &zsh), ("fish", &fish)] {
        assert!(
            !text.contains("generate"),
            "{shell} completion offers `generate`"
        );
    }
    let bash_file = read("/usr/share/bash-completion/completions/anyvip");
    assert!(
        !bash_file.contains("generate"),
        "bash completion offers `generate`"
    );

    // The unit: the repository's, with the package's binary path and its
    // man pages as Documentation=; only comments differ otherwise.
    let installed_unit = read(UNIT);
    let mut expected = Vec::new();
    for line in settings(&read(root().join("config/anyvip.service"))) {
        if line.starts_with("ExecStart=") {
            expected.push(line.replace("/usr/local/bin/anyvip", "/usr/bin/anyvip"));
        } else if line.starts_with("Description=") {
            expected.push(line);
            expected.push(
                "Documentation=man:anyvip(8) man:anyvip.toml(5) file:/usr/share/doc/anyvip/README.Debian"
                    .to_owned(),
            );
        } else {
            expected.push(line);
        }
    }
    assert_eq!(settings(&installed_unit), expected, "{UNIT}");
    assert!(
        !installed_unit.contains("/usr/local/bin"),
        "{installed_unit}"
    );
    // verify exits 0 even for settings it ignores: any word about the unit
    // fails (it also checks that the Documentation= man pages exist).
    let out = run(Command::new("systemd-analyze").args(["verify", UNIT]));
    let verify = said(&out);
    assert!(out.status.success(), "systemd-analyze verify: {verify}");
    let about_us: Vec<&str> = verify.lines().filter(|l| l.contains("anyvip")).collect();
    assert!(about_us.is_empty(), "systemd-analyze verify: {verify}");
    // Installed, not enabled (works without a running systemd too).
    let enabled = run(Command::new("systemctl").args(["is-enabled", "anyvip.service"]));
    assert_eq!(
        String::from_utf8_lossy(&enabled.stdout).trim(),
        "disabled",
        "{}",
        said(&enabled)
    );
    if Path::new("/run/systemd/system").is_dir() {
        let active = run(Command::new("systemctl").args(["is-active", "anyvip.service"]));
        assert_eq!(String::from_utf8_lossy(&active.stdout).trim(), "inactive");
    }

    // Again, as an upgrade is (prerm upgrade, unpack, postinst configure
    // with the old version): the statoverrides keep the configuration's group.
    success(Command::new("dpkg").arg("-i").arg(deb));

    // User, group, and who may read the configuration.
    let group = nix::unistd::Group::from_name("anyvip")
        .expect("the group database")
        .expect("group anyvip (sysusers.d)");
    let user = nix::unistd::User::from_name("anyvip")
        .expect("the user database")
        .expect("user anyvip (sysusers.d)");
    assert_eq!(user.gid, group.gid);
    for (path, mode) in [(CONFIG_DIR, 0o750), (CONFFILE, 0o640)] {
        let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (0, group.gid.as_raw(), mode),
            "{path}: owner, group, mode"
        );
    }
    assert_eq!(read(CONFFILE), read(root().join("config/anyvip.toml")));
    let conffiles = read("/var/lib/dpkg/info/anyvip.conffiles");
    assert_eq!(conffiles.trim(), CONFFILE, "the conffiles");

    // Purge: nothing of the package's is left.
    success(Command::new("dpkg").args(["--purge", "anyvip"]));
    drop(installed);
    assert_eq!(package_status(), "not-installed");
    let left: Vec<&PathBuf> = files.iter().filter(|p| p.exists()).collect();
    assert!(left.is_empty(), "left after purge: {left:?}");
    let after = traces();
    let new: Vec<&String> = after.difference(&before).collect();
    assert!(new.is_empty(), "new after install and purge: {new:?}");
    assert_eq!(statoverrides(), Vec::<String>::new());
    // Debian packages keep their system users (files may still be owned by
    // the IDs); sysusers.d never removes one either.
    assert!(nix::unistd::User::from_name("anyvip")
        .expect("the user database")
        .is_some());
}
