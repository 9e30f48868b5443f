//! docs/configuration.md, the configuration reference (and the source of
//! anyvip.toml(5)), checked against the schema the parser uses: every key
//! the file may hold is documented, with its TOML type and whether a
//! reload applies it, and every documented key is one the parser accepts.
//!
//! The keys come from a JSON Schema derived (schemars, test builds only)
//! from the very structs in [`super::schema`] that serde deserializes, with
//! their `deny_unknown_fields`: a key added to a struct is a key this test
//! asks the reference for. Nothing here parses Rust source.
//!
//! The reference lists each table under a `## ` heading that names it in
//! backticks (`` `[speaker]` ``, `` `[[peer]]` ``, `` `[check.NAME]` ``)
//! and its keys in a table whose rows start with the key in backticks:
//! `` | `key` | type | default | allowed | reload | ``.

use std::collections::BTreeMap;

use serde_json::Value;

use super::schema::File;

const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");

/// What a reload cannot apply (src/daemon/reload.rs refuses these with
/// "restart anyvip to apply it"); the reference's Reload column says
/// "restart" for exactly these, and something else for every other key.
fn needs_restart(key: &str) -> bool {
    matches!(
        key,
        "speaker.listen" | "dataplane.interface" | "dataplane.manage"
    ) || key.starts_with("api.")
}

/// Every key of the file as `table.key` (`vip.steer.port` for a key of
/// an inline table), with its TOML type.
fn schema_keys() -> BTreeMap<String, &'static str> {
    let root = schemars::schema_for!(File).to_value();
    let defs = root.get("$defs").cloned().unwrap_or(Value::Null);
    let mut keys = BTreeMap::new();
    let tables = properties(&root, &defs);
    assert!(!tables.is_empty(), "no tables in the schema: {root:#}");
    for (table, schema) in tables {
        // `[[peer]]`: the items; `[check.NAME]`: the values.
        let item = match toml_type(&schema, &defs) {
            "array" => resolve(schema.get("items").unwrap_or(&Value::Null), &defs),
            _ => match resolve(&schema, &defs).get("additionalProperties") {
                Some(v) if v.is_object() => resolve(v, &defs),
                _ => schema,
            },
        };
        collect(&table, &item, &defs, &mut keys);
    }
    keys
}

fn collect(prefix: &str, table: &Value, defs: &Value, out: &mut BTreeMap<String, &'static str>) {
    for (key, schema) in properties(table, defs) {
        let path = format!("{prefix}.{key}");
        let kind = toml_type(&schema, defs);
        if kind == "table" {
            collect(&path, &schema, defs, out);
        }
        out.insert(path, kind);
    }
}

/// Follow `$ref` and drop the `null` of an `Option`.
fn resolve(schema: &Value, defs: &Value) -> Value {
    if let Some(name) = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        return resolve(defs.get(name).unwrap_or(&Value::Null), defs);
    }
    for combinator in ["anyOf", "oneOf"] {
        if let Some(Value::Array(variants)) = schema.get(combinator) {
            if let Some(v) = variants
                .iter()
                .find(|v| v.get("type").and_then(Value::as_str) != Some("null"))
            {
                return resolve(v, defs);
            }
        }
    }
    schema.clone()
}

fn properties(schema: &Value, defs: &Value) -> Vec<(String, Value)> {
    match resolve(schema, defs).get("properties") {
        Some(Value::Object(p)) => p.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => Vec::new(),
    }
}

/// The TOML type a JSON Schema type is written as.
fn toml_type(schema: &Value, defs: &Value) -> &'static str {
    let schema = resolve(schema, defs);
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    match types.into_iter().find(|t| *t != "null") {
        Some("string") => "string",
        Some("integer") => "integer",
        Some("boolean") => "boolean",
        Some("array") => "array",
        Some("object") => "table",
        other => panic!("a key of unexpected type {other:?}: {schema:#}"),
    }
}

/// One row of the reference: the key's cells, and the line it is on.
#[derive(Debug)]
struct Row {
    line: usize,
    cells: Vec<String>,
}

/// `table.key` -> its row, from every table section of the reference.
fn documented_keys(text: &str) -> BTreeMap<String, Row> {
    let mut keys = BTreeMap::new();
    let mut table: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        if let Some(heading) = line.strip_prefix("## ") {
            // "## `[speaker]`", "## `[[peer]]`", "## `[check.NAME]`".
            table = heading
                .split('`')
                .nth(1)
                .filter(|t| t.starts_with('['))
                .map(|t| {
                    let name = t.trim_matches(|c| c == '[' || c == ']');
                    name.split('.').next().unwrap_or(name).to_string()
                });
            continue;
        }
        let Some(table) = &table else { continue };
        let Some(row) = line.strip_prefix("| `") else {
            continue;
        };
        let cells: Vec<String> = row
            .trim_end_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_string())
            .collect();
        let key = cells
            .first()
            .and_then(|k| k.split('`').next())
            .unwrap_or_default()
            .to_string();
        let path = format!("{table}.{key}");
        if let Some(first) = keys.insert(path.clone(), Row { line: n + 1, cells }) {
            panic!(
                "docs/configuration.md:{}: {path} is documented twice (also line {})",
                n + 1,
                first.line
            );
        }
    }
    keys
}

#[test]
fn the_reference_documents_every_key_the_schema_accepts_and_no_other() {
    let text = std::fs::read_to_string(REFERENCE).expect("docs/configuration.md");
    let schema = schema_keys();
    let documented = documented_keys(&text);
    // The walk itself: keys from every table and from the inline table.
    for key in [
        "speaker.router_id",
        "peer.hold_time",
        "vip.steer.to",
        "check.https",
        "dataplane.guard",
        "drain.delay",
        "api.socket_mode",
    ] {
        assert!(schema.contains_key(key), "{key} not in {schema:?}");
    }
    let missing: Vec<&String> = schema
        .keys()
        .filter(|k| !documented.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not document {missing:?}"
    );
    let unknown: Vec<String> = documented
        .iter()
        .filter(|(k, _)| !schema.contains_key(*k))
        .map(|(k, r)| format!("{k} (line {})", r.line))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/configuration.md documents keys the parser refuses: {unknown:?}"
    );
}

#[test]
fn each_documented_key_has_its_type_and_says_whether_a_reload_applies_it() {
    let text = std::fs::read_to_string(REFERENCE).expect("docs/configuration.md");
    let schema = schema_keys();
    for (key, row) in documented_keys(&text) {
        let at = format!("docs/configuration.md:{}: {key}", row.line);
        assert_eq!(
            row.cells.len(),
            5,
            "{at}: a row is | key | type | default | allowed | reload |"
        );
        let Some(kind) = schema.get(&key) else {
            continue; // the other test names it
        };
        assert!(
            row.cells[1].contains(kind),
            "{at}: the type column {:?} does not say {kind}",
            row.cells[1]
        );
        let reload = &row.cells[4];
        if needs_restart(&key) {
            assert!(
                reload.starts_with("restart"),
                "{at}: a reload refuses a change to it: the reload column must say \"restart\", not {reload:?}"
            );
        } else {
            assert!(
                reload.starts_with("yes"),
                "{at}: a reload applies it: the reload column must start with \"yes\", not {reload:?}"
            );
        }
        for (cell, what) in [(&row.cells[2], "default"), (&row.cells[3], "allowed")] {
            assert!(!cell.is_empty(), "{at}: the {what} column is empty");
        }
    }
}

#[test]
fn the_reference_parser_finds_keys_and_refuses_duplicates() {
    let text = "## `[speaker]`\n\n| Key | Type | Default | Allowed | Reload |\n| --- | --- | --- | --- | --- |\n| `asn` | integer | none | 1 to 4294967295 | yes |\n\n## `[check.NAME]`\n\n| `https` | string | none | a URL | yes |\n| `steer.port` | integer | none | 1 to 65535 | yes |\n\n## Examples\n\n| `not_a_key` | x | x | x | x |\n";
    let keys = documented_keys(text);
    assert_eq!(
        keys.keys().collect::<Vec<_>>(),
        ["check.https", "check.steer.port", "speaker.asn"]
    );
    assert_eq!(keys["speaker.asn"].cells[3], "1 to 4294967295");
    let twice = std::panic::catch_unwind(|| {
        documented_keys(&format!(
            "{text}## `[drain]`\n| `delay` | a | b | c | d |\n| `delay` | a | b | c | d |\n"
        ))
    });
    assert!(twice.is_err(), "a key documented twice is refused");
}

/// The fenced `toml` blocks of the reference, with their first line.
fn toml_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        match (&mut current, line) {
            (None, "```toml") => current = Some((n + 2, String::new())),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some((_, body)), l) => {
                body.push_str(l);
                body.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn the_examples_in_the_reference_are_toml_and_the_complete_file_is_valid() {
    let text = std::fs::read_to_string(REFERENCE).expect("docs/configuration.md");
    let blocks = toml_blocks(&text);
    assert!(blocks.len() >= 8, "{} toml blocks", blocks.len());
    for (line, body) in &blocks {
        if let Err(e) = body.parse::<toml::Table>() {
            panic!("docs/configuration.md:{line}: not TOML: {e}");
        }
    }
    // The complete file (the last example): valid as it stands; its CA
    // file is not on this machine, which is a warning only.
    let (line, complete) = blocks.last().expect("a complete file");
    let parsed = super::parse_with_warnings(complete, std::path::Path::new("/nonexistent"));
    assert!(parsed.is_ok(), "docs/configuration.md:{line}: {parsed:?}");
}
