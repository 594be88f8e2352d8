//! `.proto` text for persistent types, built from the types themselves, so
//! that what Rust stores can be read in any language: the database keeps it
//! (`pb_schema`), and [`Persistent::proto_files`](crate::Persistent::proto_files)
//! gives it to a program.

use std::collections::{BTreeMap, BTreeSet};

/// One field of a message definition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub struct FieldDef {
    /// `optional`, `required`, `repeated` or empty (proto3 implicit presence).
    pub label: &'static str,
    /// The type: a scalar name, `.full.Name` or `map<K, V>`.
    pub ty: String,
    /// The field name.
    pub name: &'static str,
    /// The field number.
    pub tag: u32,
    /// The `[default = ...]` text, for proto2 files.
    pub default: Option<String>,
    /// The packed option of a repeated numeric field.
    pub packed: Option<bool>,
    /// A reference's `(pbpersist.target)`.
    pub target: Option<&'static str>,
    /// Whether the field is a group (delimited encoding), written as an
    /// editions field with `message_encoding = DELIMITED`.
    pub group: bool,
    /// The field's `(pbpersist.index)`: whether it is unique, if it has one.
    pub index: Option<bool>,
    /// The members, if this is a oneof.
    pub oneof: Vec<FieldDef>,
}

impl FieldDef {
    /// A oneof and its members.
    pub fn oneof(name: &'static str, members: Vec<FieldDef>) -> Self {
        FieldDef {
            label: "",
            ty: String::new(),
            name,
            tag: 0,
            default: None,
            packed: None,
            target: None,
            index: None,
            group: false,
            oneof: members,
        }
    }
}

/// A message definition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub struct MessageDef {
    /// The full name.
    pub full_name: &'static str,
    /// The package.
    pub package: &'static str,
    /// Whether the message needs proto2 (required fields, defaults, groups).
    pub proto2: bool,
    /// The fields and oneofs in declaration order.
    pub fields: Vec<FieldDef>,
    /// Its `(pbpersist.composite_index)` options: the fields in key order,
    /// and whether the index is unique.
    pub indexes: Vec<(Vec<&'static str>, bool)>,
    /// Its `(pbpersist.extent)` option.
    pub extent: bool,
}

/// An enum definition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub struct EnumDef {
    /// The full name.
    pub full_name: &'static str,
    /// The package.
    pub package: &'static str,
    /// Whether the enum is closed (proto2).
    pub closed: bool,
    /// The values (aliases included) as (name, number), in declaration order.
    pub values: Vec<(&'static str, i32)>,
}

enum Def {
    Message(MessageDef),
    Enum(EnumDef),
}

impl Def {
    fn package(&self) -> &'static str {
        match self {
            Def::Message(m) => m.package,
            Def::Enum(e) => e.package,
        }
    }
}

/// The well-known types' files, by type name.
fn well_known_file(full_name: &str) -> Option<&'static str> {
    Some(match full_name.strip_prefix("google.protobuf.")? {
        "Any" => "google/protobuf/any.proto",
        "Duration" => "google/protobuf/duration.proto",
        "Empty" => "google/protobuf/empty.proto",
        "FieldMask" => "google/protobuf/field_mask.proto",
        "Struct" | "Value" | "ListValue" | "NullValue" => "google/protobuf/struct.proto",
        "Timestamp" => "google/protobuf/timestamp.proto",
        _ if full_name.ends_with("Value") => "google/protobuf/wrappers.proto",
        _ => "google/protobuf/descriptor.proto",
    })
}

/// A set of message and enum definitions, rendered as one `.proto` file per package.
#[derive(Default)]
pub struct ProtoSchema {
    defs: BTreeMap<&'static str, Def>,
    seen: BTreeSet<&'static str>,
}

impl std::fmt::Debug for ProtoSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.defs.keys()).finish()
    }
}

impl ProtoSchema {
    /// An empty schema.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `full_name` is new (and now seen): describers call this first
    /// so that cycles end.
    #[doc(hidden)]
    pub fn begin(&mut self, full_name: &'static str) -> bool {
        self.seen.insert(full_name)
    }

    /// Adds a message definition.
    #[doc(hidden)]
    pub fn add_message(&mut self, def: MessageDef) {
        self.defs.insert(def.full_name, Def::Message(def));
    }

    /// Adds an enum definition.
    #[doc(hidden)]
    pub fn add_enum(&mut self, def: EnumDef) {
        self.defs.insert(def.full_name, Def::Enum(def));
    }

    /// The `.proto` files, as (file name, source), one per package. The
    /// well-known types and pbpersist's own types are imported, not written.
    pub fn files(&self) -> Vec<(String, String)> {
        let mut packages: BTreeMap<&str, Vec<&Def>> = BTreeMap::new();
        for (name, def) in &self.defs {
            if well_known_file(name).is_some() || def.package() == "pbpersist" {
                continue;
            }
            packages.entry(def.package()).or_default().push(def);
        }
        packages.into_iter().map(|(package, defs)| (file_name(package), self.render(package, &defs))).collect()
    }

    fn render(&self, package: &str, defs: &[&Def]) -> String {
        let syntax = Syntax::of(defs);
        let mut imports = BTreeSet::new();
        let mut uses = |ty: &str, options: bool| {
            if options || ty == ".pbpersist.Ref" || ty.contains(".pbpersist.Ref>") {
                imports.insert("pbpersist/options.proto".to_owned());
            }
            for name in ty.split(['<', '>', ',', ' ']).filter_map(|t| t.strip_prefix('.')) {
                if let Some(file) = well_known_file(name) {
                    imports.insert(file.to_owned());
                } else if let Some(def) = self.defs.get(name)
                    && def.package() != package
                    && def.package() != "pbpersist"
                {
                    imports.insert(file_name(def.package()));
                }
            }
        };
        for d in defs {
            if let Def::Message(m) = d {
                uses("", m.extent || !m.indexes.is_empty());
                for f in m.fields.iter().flat_map(|f| std::iter::once(f).chain(&f.oneof)) {
                    uses(&f.ty, f.target.is_some() || f.index.is_some());
                }
            }
        }
        let mut out = String::from(HEADER);
        out.push_str(match syntax {
            Syntax::Proto2 => "syntax = \"proto2\";\n",
            Syntax::Proto3 => "syntax = \"proto3\";\n",
            Syntax::Editions => "edition = \"2023\";\n",
        });
        if !package.is_empty() {
            out.push_str(&format!("\npackage {package};\n"));
        }
        if !imports.is_empty() {
            out.push('\n');
            for i in &imports {
                out.push_str(&format!("import \"{i}\";\n"));
            }
        }
        // Nested types go inside their parents; the rest at the top level.
        let prefix = if package.is_empty() { String::new() } else { format!("{package}.") };
        let local = |d: &&Def| -> String {
            let full = match d {
                Def::Message(m) => m.full_name,
                Def::Enum(e) => e.full_name,
            };
            full.strip_prefix(prefix.as_str()).unwrap_or(full).to_owned()
        };
        let mut by_path: BTreeMap<String, &Def> = defs.iter().map(|d| (local(d), *d)).collect();
        let top: Vec<String> = by_path.keys().filter(|p| !p.contains('.')).cloned().collect();
        for path in top {
            out.push('\n');
            render_def(&path, &mut by_path, syntax, 0, &mut out);
        }
        // Anything whose parent is not a known message is written at the top level.
        let rest: Vec<String> = by_path.keys().cloned().collect();
        for path in rest {
            out.push('\n');
            render_def(&path, &mut by_path, syntax, 0, &mut out);
        }
        out
    }
}

/// The first line of every file [`ProtoSchema::files`] writes.
pub(crate) const HEADER: &str = "// Written by pbpersist from the Rust types that stored objects of these types.\n";

/// A file [`ProtoSchema::files`] wrote, in parts: the lines before the
/// imports (header, syntax, package), the imports, and each top-level
/// definition by name.
struct Parts<'a> {
    head: Vec<&'a str>,
    imports: BTreeSet<&'a str>,
    defs: BTreeMap<&'a str, String>,
}

impl<'a> Parts<'a> {
    fn of(text: &'a str) -> Option<Parts<'a>> {
        if !text.starts_with(HEADER) {
            return None;
        }
        let mut parts = Parts { head: Vec::new(), imports: BTreeSet::new(), defs: BTreeMap::new() };
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let top = line.strip_prefix("message ").or_else(|| line.strip_prefix("enum "));
            if let Some(name) = top.and_then(|rest| rest.strip_suffix(" {")) {
                let mut def = format!("{line}\n");
                loop {
                    let inner = lines.next()?;
                    def.push_str(inner);
                    def.push('\n');
                    if inner == "}" {
                        break;
                    }
                }
                parts.defs.insert(name, def);
            } else if line.starts_with("import ") {
                parts.imports.insert(line);
            } else if !line.is_empty() {
                parts.head.push(line);
            }
        }
        Some(parts)
    }
}

/// The file a program stores for a package, given the file of that name
/// the database already has: `ours` with every top-level definition of
/// `stored` that `ours` lacks, so that a program storing the schemas of
/// the types it uses never drops the types that another program, or an
/// earlier run, stored in the same package. `ours` alone when `stored` was
/// not written by pbpersist, or in another syntax.
pub(crate) fn merge_with_stored(ours: &str, stored: &str) -> String {
    let (Some(mine), Some(theirs)) = (Parts::of(ours), Parts::of(stored)) else { return ours.to_owned() };
    if mine.head != theirs.head || theirs.defs.keys().all(|name| mine.defs.contains_key(name)) {
        return ours.to_owned();
    }
    let mut out = String::new();
    for (i, line) in mine.head.iter().enumerate() {
        // The package line stands apart, as `render` writes it.
        if i > 0 && line.starts_with("package ") {
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    let imports: BTreeSet<&str> = mine.imports.union(&theirs.imports).copied().collect();
    if !imports.is_empty() {
        out.push('\n');
        for i in imports {
            out.push_str(i);
            out.push('\n');
        }
    }
    let mut defs = theirs.defs;
    defs.extend(mine.defs);
    for def in defs.values() {
        out.push('\n');
        out.push_str(def);
    }
    out
}

fn file_name(package: &str) -> String {
    if package.is_empty() { "_.proto".to_owned() } else { format!("{package}.proto") }
}

/// The syntax a package's file is written in: proto3 when it can say
/// everything, else proto2, else editions (groups, or proto2's required
/// fields, defaults or closed enums beside implicit presence or open enums).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Proto2,
    Proto3,
    Editions,
}

impl Syntax {
    fn of(defs: &[&Def]) -> Syntax {
        let fields = || {
            defs.iter()
                .filter_map(|d| match d {
                    Def::Message(m) => Some(m.fields.iter().flat_map(|f| std::iter::once(f).chain(&f.oneof))),
                    Def::Enum(_) => None,
                })
                .flatten()
        };
        let proto2 = defs.iter().any(|d| match d {
            Def::Message(m) => m.proto2,
            Def::Enum(e) => e.closed,
        });
        let open_enum = defs.iter().any(|d| matches!(d, Def::Enum(e) if !e.closed));
        let implicit = fields().any(|f| f.label.is_empty() && f.tag != 0 && !f.ty.starts_with("map<"));
        if fields().any(|f| f.group) || (proto2 && (open_enum || implicit)) {
            Syntax::Editions
        } else if proto2 {
            Syntax::Proto2
        } else {
            Syntax::Proto3
        }
    }
}

fn render_def(path: &str, defs: &mut BTreeMap<String, &Def>, syntax: Syntax, depth: usize, out: &mut String) {
    let Some(def) = defs.remove(path) else { return };
    let pad = "  ".repeat(depth);
    let name = path.rsplit('.').next().unwrap_or(path);
    match def {
        Def::Enum(e) => {
            out.push_str(&format!("{pad}enum {name} {{\n"));
            if syntax == Syntax::Editions && e.closed {
                out.push_str(&format!("{pad}  option features.enum_type = CLOSED;\n"));
            }
            let numbers: BTreeSet<i32> = e.values.iter().map(|v| v.1).collect();
            if numbers.len() < e.values.len() {
                out.push_str(&format!("{pad}  option allow_alias = true;\n"));
            }
            for (value, number) in &e.values {
                out.push_str(&format!("{pad}  {value} = {number};\n"));
            }
            out.push_str(&format!("{pad}}}\n"));
        }
        Def::Message(m) => {
            out.push_str(&format!("{pad}message {name} {{\n"));
            for (fields, unique) in &m.indexes {
                let fields: Vec<String> = fields.iter().map(|f| format!("\"{f}\"")).collect();
                let unique = if *unique { ", unique: true" } else { "" };
                out.push_str(&format!(
                    "{pad}  option (pbpersist.composite_index) = {{fields: [{}]{unique}}};\n",
                    fields.join(", ")
                ));
            }
            if m.extent {
                out.push_str(&format!("{pad}  option (pbpersist.extent) = true;\n"));
            }
            for f in &m.fields {
                if f.oneof.is_empty() && f.tag != 0 {
                    field_line(f, syntax, false, &format!("{pad}  "), out);
                } else {
                    out.push_str(&format!("{pad}  oneof {} {{\n", f.name));
                    for member in &f.oneof {
                        field_line(member, syntax, true, &format!("{pad}    "), out);
                    }
                    out.push_str(&format!("{pad}  }}\n"));
                }
            }
            let children: Vec<String> = defs
                .keys()
                .filter(|p| p.strip_prefix(path).and_then(|r| r.strip_prefix('.')).is_some_and(|r| !r.contains('.')))
                .cloned()
                .collect();
            for child in children {
                render_def(&child, defs, syntax, depth + 1, out);
            }
            out.push_str(&format!("{pad}}}\n"));
        }
    }
}

fn field_line(f: &FieldDef, syntax: Syntax, in_oneof: bool, pad: &str, out: &mut String) {
    let map = f.ty.starts_with("map<");
    let mut options = Vec::new();
    let label = match syntax {
        _ if in_oneof || map => "",
        Syntax::Proto2 => match f.label {
            "required" => "required ",
            "repeated" => "repeated ",
            _ => "optional ",
        },
        Syntax::Proto3 => match f.label {
            "optional" => "optional ",
            "repeated" => "repeated ",
            _ => "",
        },
        // Editions have no labels but `repeated`; presence is a feature.
        Syntax::Editions => match f.label {
            "repeated" => "repeated ",
            "required" => {
                options.push("features.field_presence = LEGACY_REQUIRED".to_owned());
                ""
            }
            "" => {
                options.push("features.field_presence = IMPLICIT".to_owned());
                ""
            }
            _ => "",
        },
    };
    if let (Some(d), false) = (&f.default, syntax == Syntax::Proto3) {
        options.push(format!("default = {d}"));
    }
    match (f.packed, syntax) {
        (Some(true), Syntax::Proto2) => options.push("packed = true".to_owned()),
        (Some(false), Syntax::Proto3) => options.push("packed = false".to_owned()),
        (Some(false), Syntax::Editions) => options.push("features.repeated_field_encoding = EXPANDED".to_owned()),
        _ => {}
    }
    if f.group {
        options.push("features.message_encoding = DELIMITED".to_owned());
    }
    if let Some(t) = f.target {
        options.push(format!("(pbpersist.target) = \"{t}\""));
    }
    match f.index {
        Some(true) => options.push("(pbpersist.index) = {unique: true}".to_owned()),
        Some(false) => options.push("(pbpersist.index) = {}".to_owned()),
        None => {}
    }
    let options = if options.is_empty() { String::new() } else { format!(" [{}]", options.join(", ")) };
    out.push_str(&format!("{pad}{label}{} {} = {}{options};\n", f.ty, f.name, f.tag));
}

/// Bytes as a `.proto` string literal.
#[doc(hidden)]
pub fn quote_bytes(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for b in bytes {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(*b as char),
            _ => s.push_str(&format!("\\{b:03o}")),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(defs: &[&str], imports: &[&str]) -> String {
        let mut out = format!("{HEADER}syntax = \"proto2\";\n\npackage shop;\n");
        if !imports.is_empty() {
            out.push('\n');
            for i in imports {
                out.push_str(&format!("import \"{i}\";\n"));
            }
        }
        for d in defs {
            out.push_str(&format!("\nmessage {d} {{\n  optional int32 x = 1;\n  message Inner {{\n  }}\n}}\n"));
        }
        out
    }

    #[test]
    fn a_package_file_keeps_the_types_another_program_stored() {
        let stored = file(&["Order", "Zone"], &["pbpersist/options.proto"]);
        let ours = file(&["Item", "Order"], &[]);
        let merged = merge_with_stored(&ours, &stored);
        assert_eq!(merged, file(&["Item", "Order", "Zone"], &["pbpersist/options.proto"]));
        // Nothing to add: ours as it is.
        assert_eq!(merge_with_stored(&merged, &ours), merged);
        // Not pbpersist's, or another syntax: ours.
        assert_eq!(merge_with_stored(&ours, "syntax = \"proto3\";\nmessage Zone {}\n"), ours);
        let proto3 = stored.replace("proto2", "proto3");
        assert_eq!(merge_with_stored(&ours, &proto3), ours);
    }
}
