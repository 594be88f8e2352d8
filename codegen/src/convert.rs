//! Descriptors (from protox, through prost-reflect) to the shared model, and
//! the model to Rust items grouped by package and module.

use crate::editions::{self, Presence};
use crate::error::Error;
use crate::names;
use crate::source::Sources;
use pbpersist_model as model;
use pbpersist_model::Value;
use pbpersist_model::print;
use proc_macro2::TokenStream;
use prost_reflect::{
    Cardinality, DescriptorPool, EnumDescriptor, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor,
};
use std::collections::BTreeMap;

/// The full name of pbpersist's reference message.
const REF: &str = "pbpersist.Ref";
/// The full name of the option that names a reference's target.
const TARGET: &str = "pbpersist.target";
const INDEX: &str = "pbpersist.index";

/// Generated items of one package: module path inside the package to items.
#[derive(Default)]
pub struct Package {
    pub modules: BTreeMap<Vec<String>, Vec<TokenStream>>,
    /// Documentation for nested modules, by module path.
    pub module_docs: BTreeMap<Vec<String>, String>,
    /// The `.proto` files that contributed.
    pub files: Vec<String>,
}

pub struct Converter<'a> {
    pool: &'a DescriptorPool,
    sources: &'a Sources,
    resolvers: &'a BTreeMap<String, String>,
    extern_paths: &'a BTreeMap<String, String>,
    /// The runtime's path in generated code, when it is not `::pbpersist`.
    pub krate: Option<syn::Path>,
    pub packages: BTreeMap<String, Package>,
}

impl<'a> Converter<'a> {
    pub fn new(
        pool: &'a DescriptorPool,
        sources: &'a Sources,
        resolvers: &'a BTreeMap<String, String>,
        extern_paths: &'a BTreeMap<String, String>,
    ) -> Self {
        Converter { pool, sources, resolvers, extern_paths, krate: None, packages: BTreeMap::new() }
    }

    /// Converts the messages, enums and extensions of a file. Custom options
    /// (extensions of `google.protobuf` messages) get no code: pbpersist reads
    /// the ones it needs from the pool.
    pub fn file(&mut self, file: &FileDescriptor) -> Result<(), Error> {
        let package = self.packages.entry(file.package_name().to_owned()).or_default();
        package.files.push(file.name().to_owned());
        let module = package_mods(file.package_name());
        for ext in file.extensions() {
            self.extension(&ext, &module);
        }
        for msg in file.messages() {
            self.message(&msg)?;
        }
        for e in file.enums() {
            self.enumeration(&e)?;
        }
        Ok(())
    }

    fn items(&mut self, package: &str, module: Vec<String>) -> &mut Vec<TokenStream> {
        self.packages.entry(package.to_owned()).or_default().modules.entry(module).or_default()
    }

    fn message(&mut self, msg: &MessageDescriptor) -> Result<(), Error> {
        if msg.is_map_entry() || self.extern_paths.contains_key(msg.full_name()) {
            return Ok(());
        }
        let here = module_of_message(msg);
        let nested: Vec<String> = here.iter().cloned().chain([names::module(msg.name()).to_string()]).collect();
        let mut fields = Vec::new();
        let mut seen_oneofs = Vec::new();
        for field in msg.fields() {
            match field.containing_oneof().filter(|o| !o.is_synthetic()) {
                Some(oneof) => {
                    if seen_oneofs.contains(&oneof.name().to_owned()) {
                        continue;
                    }
                    seen_oneofs.push(oneof.name().to_owned());
                    let for_struct = self.members(&oneof, &here)?;
                    let for_enum = self.members(&oneof, &nested)?;
                    let enum_ident = names::type_name(oneof.name());
                    let module_ident = names::module(msg.name());
                    let ty: syn::Type = syn::parse_quote!(#module_ident::#enum_ident);
                    let file = msg.parent_file();
                    let package = file.package_name().to_owned();
                    let item = print::oneof_enum(&enum_ident, oneof.name(), &for_enum, self.krate.as_ref());
                    self.items(&package, package_mods_of(msg).into_iter().chain(nested_tail(msg)).collect()).push(item);
                    fields.push(model::Field {
                        ident: names::field(oneof.name()),
                        name: oneof.name().to_owned(),
                        docs: self.sources.docs(&file, oneof.path()),
                        deprecated: false,
                        kind: model::FieldKind::Oneof { ty, members: for_struct },
                    });
                }
                None => fields.push(self.field(&field, &here)?),
            }
        }
        let meta = ["meta", "meta_", "pbpersist_meta"]
            .into_iter()
            .find(|m| fields.iter().all(|f| f.ident != m))
            .map(names::ident)
            .expect("at most two fields can be named like the bookkeeping field");
        let file = msg.parent_file();
        let m = model::Message {
            ident: names::type_name(msg.name()),
            full_name: msg.full_name().to_owned(),
            package: explicit_package(msg.full_name(), file.package_name()),
            docs: self.sources.docs(&file, msg.path()),
            deprecated: msg.descriptor_proto().options.as_ref().and_then(|o| o.deprecated).unwrap_or(false),
            fields,
            meta,
            tracks_fields: true,
            former_names: self.former_names(msg),
            resolver: self.resolvers.get(msg.full_name()).cloned(),
            krate: self.krate.clone(),
            indexes: Vec::new(),
            extent: self.message_flag(msg, "pbpersist.extent"),
        };
        let mut m = m;
        for index in self.composite_indexes(msg) {
            if let Err(why) = pbpersist_model::parse::check_composite(&m, &index) {
                return Err(self.sources.error(
                    &file,
                    msg.path(),
                    format!("`{}` has a `(pbpersist.composite_index)` that cannot be: {why}", msg.full_name()),
                    "index declared on this message",
                    None,
                ));
            }
            m.indexes.push(index);
        }
        let package = file.package_name().to_owned();
        let own_mods = package_mods_of(msg).into_iter().chain(parent_chain(msg)).collect::<Vec<_>>();
        self.items(&package, own_mods).push(print::message(&m));

        let nested_mods: Vec<String> = package_mods_of(msg).into_iter().chain(nested_tail(msg)).collect();
        let doc = format!(" Types nested in `{}`.", msg.name());
        self.packages.entry(package).or_default().module_docs.insert(nested_mods, doc);
        for ext in msg.child_extensions() {
            let nested: Vec<String> = package_mods_of(msg).into_iter().chain(nested_tail(msg)).collect();
            self.extension(&ext, &nested);
        }
        for child in msg.child_messages() {
            self.message(&child)?;
        }
        for e in msg.child_enums() {
            self.enumeration(&e)?;
        }
        Ok(())
    }

    /// The constant for typed access to an extension of a user message, in
    /// module `module`. Extensions of `google.protobuf` messages (custom
    /// options) and extensions holding references get none: a reference set
    /// through an extension would be missing from the record's list that
    /// garbage collection walks.
    fn extension(&mut self, ext: &prost_reflect::ExtensionDescriptor, module: &[String]) {
        let extendee = ext.containing_message();
        if extendee.parent_file().name().starts_with("google/protobuf/") || holds_references(&ext.kind()) {
            return;
        }
        let value = match ext.kind() {
            Kind::Message(m) => Value::Message(self.type_of(m.full_name(), &module_of_message(&m), m.name(), module)),
            Kind::Enum(e) => Value::Enum(self.type_of(e.full_name(), &module_of_enum(&e), e.name(), module)),
            other => Value::Scalar(scalar(&other).expect("all other kinds are scalars")),
        };
        let repeated = ext.cardinality() == Cardinality::Repeated;
        let file = ext.parent_file();
        let item = print::extension(&model::Extension {
            ident: names::constant(ext.name()),
            full_name: ext.full_name().to_owned(),
            number: ext.number(),
            extendee: self.type_of(extendee.full_name(), &module_of_message(&extendee), extendee.name(), module),
            packed: repeated && extension_packed(ext),
            group: ext.is_group(),
            repeated,
            value,
            docs: self.sources.docs(&file, ext.path()),
            krate: self.krate.clone(),
        });
        self.items(file.package_name(), module.to_vec()).push(item);
    }

    /// Whether a boolean message option (an extension of `MessageOptions`) is set.
    fn message_flag(&self, msg: &MessageDescriptor, name: &str) -> bool {
        let Some(ext) = self.pool.get_extension_by_name(name) else { return false };
        let options = msg.options();
        options.has_extension(&ext) && options.get_extension(&ext).as_bool() == Some(true)
    }

    /// The message's `(pbpersist.composite_index)` options.
    fn composite_indexes(&self, msg: &MessageDescriptor) -> Vec<model::CompositeIndex> {
        let Some(ext) = self.pool.get_extension_by_name("pbpersist.composite_index") else { return Vec::new() };
        let options = msg.options();
        if !options.has_extension(&ext) {
            return Vec::new();
        }
        let value = options.get_extension(&ext);
        let list = value.as_list().unwrap_or_default();
        list.iter()
            .filter_map(|v| v.as_message())
            .map(|m| model::CompositeIndex {
                fields: m
                    .get_field_by_name("fields")
                    .and_then(|f| {
                        f.as_list()
                            .map(|l| l.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect::<Vec<String>>())
                    })
                    .unwrap_or_default()
                    .into_iter()
                    .map(|path: String| nested_kind(msg, &path).map(|k| format!("{path}: {k}")).unwrap_or(path))
                    .collect(),
                unique: m.get_field_by_name("unique").and_then(|u| u.as_bool()).unwrap_or(false),
            })
            .collect()
    }

    /// The message's `(pbpersist.former_names)`.
    fn former_names(&self, msg: &MessageDescriptor) -> Vec<String> {
        let Some(ext) = self.pool.get_extension_by_name("pbpersist.former_names") else { return Vec::new() };
        let options = msg.options();
        if !options.has_extension(&ext) {
            return Vec::new();
        }
        let value = options.get_extension(&ext);
        value.as_list().map(|l| l.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default()
    }

    fn members(&self, oneof: &prost_reflect::OneofDescriptor, from: &[String]) -> Result<Vec<model::Member>, Error> {
        let file = oneof.parent_message().parent_file();
        oneof
            .fields()
            .map(|f| {
                let (value, boxed) = self.value(&f, f.kind(), from)?;
                Ok(model::Member {
                    variant: names::type_name(f.name()),
                    name: f.name().to_owned(),
                    tag: f.number(),
                    value,
                    boxed,
                    group: f.is_group(),
                    docs: self.sources.docs(&file, f.path()),
                    deprecated: is_deprecated(&f),
                })
            })
            .collect()
    }

    fn field(&self, field: &FieldDescriptor, from: &[String]) -> Result<model::Field, Error> {
        let file = field.parent_file();
        let index = self.index(field)?;
        if index.is_some() && (field.is_map() || field.containing_oneof().is_some_and(|o| !o.is_synthetic())) {
            return Err(self.index_refused(field, "a map or a oneof member"));
        }
        let kind = if field.is_map() {
            let Kind::Message(entry) = field.kind() else { unreachable!("map fields are messages") };
            let key = entry.map_entry_key_field();
            let value = entry.map_entry_value_field();
            let key = scalar(&key.kind()).expect("map keys are scalars");
            let (value, _) = self.value_with_target(field, &value.kind(), from)?;
            model::FieldKind::Map { tag: field.number(), key, value }
        } else {
            let (value, boxed) = self.value(field, field.kind(), from)?;
            let implicit = editions::presence(field) == Presence::Implicit;
            let label = match field.cardinality() {
                Cardinality::Repeated => model::Label::Repeated,
                Cardinality::Required => model::Label::Required,
                _ if implicit => model::Label::Implicit,
                _ => model::Label::Optional,
            };
            let default = if field.field_descriptor_proto().default_value.is_some() {
                default_value(&field.default_value())
            } else {
                None
            };
            model::FieldKind::Single(model::Single {
                tag: field.number(),
                label,
                value,
                default,
                boxed: boxed && label != model::Label::Repeated,
                packed: is_packed(field),
                group: field.is_group(),
                index,
            })
        };
        if let (Some(_), model::FieldKind::Single(s)) = (index, &kind)
            && !s.value.is_indexable()
        {
            return Err(self.index_refused(field, "a float, double or message field"));
        }
        Ok(model::Field {
            ident: names::field(field.name()),
            name: field.name().to_owned(),
            docs: self.sources.docs(&file, field.path()),
            deprecated: is_deprecated(field),
            kind,
        })
    }

    /// The model type of a field's values and whether a message must be boxed.
    fn value(&self, field: &FieldDescriptor, kind: Kind, from: &[String]) -> Result<(model::Value, bool), Error> {
        self.value_with_target(field, &kind, from)
    }

    fn value_with_target(
        &self,
        field: &FieldDescriptor,
        kind: &Kind,
        from: &[String],
    ) -> Result<(model::Value, bool), Error> {
        let target = self.target(field)?;
        let is_ref = matches!(kind, Kind::Message(m) if m.full_name() == REF);
        if target.is_some() && !is_ref {
            return Err(self.sources.error(
                &field.parent_file(),
                field.path(),
                format!("field `{}` has a `(pbpersist.target)` option but is not a reference", field.full_name()),
                "not of type pbpersist.Ref",
                Some("declare the field as `pbpersist.Ref` or remove the option".into()),
            ));
        }
        Ok(match kind {
            Kind::Message(_) if is_ref => {
                let ty = match target {
                    Some(t) => self.type_of(t.full_name(), &module_of_message(&t), t.name(), from),
                    None => {
                        let krate = pbpersist_model::types::krate(self.krate.as_ref());
                        syn::parse_quote!(#krate::AnyObject)
                    }
                };
                (model::Value::Ref(ty), false)
            }
            Kind::Message(m) => {
                let ty = self.type_of(m.full_name(), &module_of_message(m), m.name(), from);
                (model::Value::Message(ty), needs_box(field, m))
            }
            Kind::Enum(e) => {
                let ty = self.type_of(e.full_name(), &module_of_enum(e), e.name(), from);
                (model::Value::Enum(ty), false)
            }
            other => (model::Value::Scalar(scalar(other).expect("all other kinds are scalars")), false),
        })
    }

    /// A field's `(pbpersist.index)` option, if it has one.
    fn index(&self, field: &FieldDescriptor) -> Result<Option<model::IndexSpec>, Error> {
        let Some(ext) = self.pool.get_extension_by_name(INDEX) else { return Ok(None) };
        let options = field.options();
        if !options.has_extension(&ext) {
            return Ok(None);
        }
        let value = options.get_extension(&ext);
        let unique =
            value.as_message().and_then(|m| m.get_field_by_name("unique")).and_then(|v| v.as_bool()).unwrap_or(false);
        Ok(Some(model::IndexSpec { unique }))
    }

    fn index_refused(&self, field: &FieldDescriptor, what: &str) -> Error {
        self.sources.error(
            &field.parent_file(),
            field.path(),
            format!("`{}` has `(pbpersist.index)`, which {what} cannot have", field.full_name()),
            "index declared here",
            Some("index an integer, bool, string, bytes, enum or reference field".into()),
        )
    }

    /// The message named by a field's `(pbpersist.target)` option, if any.
    fn target(&self, field: &FieldDescriptor) -> Result<Option<MessageDescriptor>, Error> {
        let Some(ext) = self.pool.get_extension_by_name(TARGET) else {
            return Ok(None);
        };
        let options = field.options();
        if !options.has_extension(&ext) {
            return Ok(None);
        }
        let value = options.get_extension(&ext);
        let name = value.as_str().unwrap_or_default().trim_start_matches('.').to_owned();
        // Resolve like protobuf does: innermost scope first, then outwards.
        let scope = field.parent_message().full_name().to_owned();
        let mut parts: Vec<&str> = scope.split('.').collect();
        loop {
            let candidate = if parts.is_empty() { name.clone() } else { format!("{}.{name}", parts.join(".")) };
            if let Some(m) = self.pool.get_message_by_name(&candidate) {
                return Ok(Some(m));
            }
            if self.pool.get_enum_by_name(&candidate).is_some() {
                return Err(self.sources.error(
                    &field.parent_file(),
                    field.path(),
                    format!("reference `{}` targets `{candidate}`, which is an enum, not a message", field.full_name()),
                    "reference declared here",
                    Some("a reference must point to a message type".into()),
                ));
            }
            if parts.pop().is_none() {
                break;
            }
        }
        Err(self.sources.error(
            &field.parent_file(),
            field.path(),
            format!("reference `{}` targets `{name}`, which is not a known message", field.full_name()),
            "reference declared here",
            Some("name a message defined in this file or an imported one, e.g. \"demo.Tower\"".into()),
        ))
    }

    /// The Rust type for a message or enum: its extern path if it has one,
    /// else the relative path to where it is generated.
    fn type_of(&self, full_name: &str, module: &[String], name: &str, from: &[String]) -> syn::Type {
        match self.extern_paths.get(full_name).and_then(|p| syn::parse_str(p).ok()) {
            Some(ty) => ty,
            None => self.path_to(module, names::type_name(name), from),
        }
    }

    /// The Rust path from module `from` to type `ident` in module `to`.
    fn path_to(&self, to: &[String], ident: proc_macro2::Ident, from: &[String]) -> syn::Type {
        let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
        let mut path = String::new();
        for _ in common..from.len() {
            path.push_str("super::");
        }
        for m in &to[common..] {
            path.push_str(&names::ident(m).to_string());
            path.push_str("::");
        }
        path.push_str(&ident.to_string());
        syn::parse_str(&path).expect("module paths built from identifiers parse")
    }

    fn enumeration(&mut self, e: &EnumDescriptor) -> Result<(), Error> {
        if self.extern_paths.contains_key(e.full_name()) {
            return Ok(());
        }
        let file = e.parent_file();
        let mut variants: Vec<model::Variant> = Vec::new();
        let mut aliases = Vec::new();
        // Declaration order decides which of two equal numbers is the alias.
        let mut values: Vec<_> = e.values().collect();
        values.sort_by_key(|v| v.path().last().copied());
        for v in values {
            if let Some(first) = variants.iter().find(|x| x.number == v.number()) {
                // A Rust enum cannot repeat a discriminant: the alias becomes a constant.
                aliases.push(model::Alias {
                    ident: names::alias(e.name(), v.name()),
                    name: v.name().to_owned(),
                    variant: first.ident.clone(),
                });
                continue;
            }
            variants.push(model::Variant {
                ident: names::variant(e.name(), v.name()),
                name: v.name().to_owned(),
                number: v.number(),
                docs: self.sources.docs(&file, v.path()),
                deprecated: v
                    .enum_value_descriptor_proto()
                    .options
                    .as_ref()
                    .and_then(|o| o.deprecated)
                    .unwrap_or(false),
            });
        }
        let m = model::Enum {
            ident: names::type_name(e.name()),
            full_name: e.full_name().to_owned(),
            package: explicit_package(e.full_name(), file.package_name()),
            docs: self.sources.docs(&file, e.path()),
            deprecated: e.enum_descriptor_proto().options.as_ref().and_then(|o| o.deprecated).unwrap_or(false),
            variants,
            aliases,
            closed: editions::enum_closed(e),
            krate: self.krate.clone(),
        };
        let package = file.package_name().to_owned();
        let mods = module_of_enum(e);
        self.items(&package, mods).push(print::enumeration(&m));
        Ok(())
    }
}

/// Whether a repeated field is written packed: the `packed` option when
/// given (editions files are lowered with it set), else packed for numeric
/// and enum fields in proto3 only. (Computed here because the descriptor
/// pool ignores an explicit proto2 option.)
fn is_packed(f: &FieldDescriptor) -> bool {
    if f.cardinality() != Cardinality::Repeated || scalar(&f.kind()).is_some_and(|s| !s.is_packable()) {
        return false;
    }
    if matches!(f.kind(), Kind::Message(_)) {
        return false;
    }
    match f.field_descriptor_proto().options.as_ref().and_then(|o| o.packed) {
        Some(explicit) => explicit,
        None => f.parent_file().syntax() == prost_reflect::Syntax::Proto3,
    }
}

/// The package, written out only for nested types, whose package is not
/// everything before the last dot of their name.
fn explicit_package(full_name: &str, package: &str) -> Option<String> {
    let implied = full_name.rsplit_once('.').map(|(p, _)| p).unwrap_or_default();
    (implied != package).then(|| package.to_owned())
}

fn is_deprecated(f: &FieldDescriptor) -> bool {
    f.field_descriptor_proto().options.as_ref().and_then(|o| o.deprecated).unwrap_or(false)
}

/// Package components as module names.
fn package_mods(package: &str) -> Vec<String> {
    package.split('.').filter(|s| !s.is_empty()).map(|s| names::module(s).to_string()).collect()
}

fn package_mods_of(msg: &MessageDescriptor) -> Vec<String> {
    package_mods(msg.parent_file().package_name())
}

/// Module names of the messages enclosing `msg`, outermost first.
fn parent_chain(msg: &MessageDescriptor) -> Vec<String> {
    let mut chain = Vec::new();
    let mut cur = msg.parent_message();
    while let Some(p) = cur {
        chain.push(names::module(p.name()).to_string());
        cur = p.parent_message();
    }
    chain.reverse();
    chain
}

/// The enclosing chain plus the message's own module: where its nested types live.
fn nested_tail(msg: &MessageDescriptor) -> Vec<String> {
    let mut chain = parent_chain(msg);
    chain.push(names::module(msg.name()).to_string());
    chain
}

/// The module (from the package root of the generated tree) of a message's struct.
fn module_of_message(msg: &MessageDescriptor) -> Vec<String> {
    package_mods_of(msg).into_iter().chain(parent_chain(msg)).collect()
}

fn module_of_enum(e: &EnumDescriptor) -> Vec<String> {
    let mut mods = package_mods(e.parent_file().package_name());
    if let Some(p) = e.parent_message() {
        mods.extend(nested_tail(&p));
    }
    mods
}

/// Whether a repeated extension is written packed, by the rule of
/// [`is_packed`] (explicit option, else the proto3 default).
fn extension_packed(ext: &prost_reflect::ExtensionDescriptor) -> bool {
    if scalar(&ext.kind()).is_some_and(|s| !s.is_packable()) || matches!(ext.kind(), Kind::Message(_)) {
        return false;
    }
    match ext.field_descriptor_proto().options.as_ref().and_then(|o| o.packed) {
        Some(explicit) => explicit,
        None => ext.parent_file().syntax() == prost_reflect::Syntax::Proto3,
    }
}

/// Whether values of this kind are or contain references.
fn holds_references(kind: &Kind) -> bool {
    let Kind::Message(start) = kind else { return false };
    let mut stack = vec![start.clone()];
    let mut seen = std::collections::HashSet::new();
    while let Some(m) = stack.pop() {
        if m.full_name() == REF {
            return true;
        }
        if seen.insert(m.full_name().to_owned()) {
            stack.extend(m.fields().filter_map(|f| f.kind().as_message().cloned()));
        }
    }
    false
}

/// Whether a singular message field must be boxed: when the field's message
/// can contain the field's own message again (directly or through others).
fn needs_box(field: &FieldDescriptor, target: &MessageDescriptor) -> bool {
    if field.cardinality() == Cardinality::Repeated || field.is_map() {
        return false;
    }
    let owner = field.parent_message().full_name().to_owned();
    let mut stack = vec![target.clone()];
    let mut seen = std::collections::HashSet::new();
    while let Some(m) = stack.pop() {
        if m.full_name() == owner {
            return true;
        }
        if !seen.insert(m.full_name().to_owned()) {
            continue;
        }
        for f in m.fields() {
            // Repeated and map fields live in a Vec or map, which breaks the size cycle.
            if f.cardinality() == Cardinality::Repeated {
                continue;
            }
            if let Kind::Message(inner) = f.kind() {
                stack.push(inner);
            }
        }
    }
    false
}

fn scalar(kind: &Kind) -> Option<model::Scalar> {
    use model::Scalar as S;
    Some(match kind {
        Kind::Double => S::Double,
        Kind::Float => S::Float,
        Kind::Int32 => S::Int32,
        Kind::Int64 => S::Int64,
        Kind::Uint32 => S::Uint32,
        Kind::Uint64 => S::Uint64,
        Kind::Sint32 => S::Sint32,
        Kind::Sint64 => S::Sint64,
        Kind::Fixed32 => S::Fixed32,
        Kind::Fixed64 => S::Fixed64,
        Kind::Sfixed32 => S::Sfixed32,
        Kind::Sfixed64 => S::Sfixed64,
        Kind::Bool => S::Bool,
        Kind::String => S::String,
        Kind::Bytes => S::Bytes,
        Kind::Message(_) | Kind::Enum(_) => return None,
    })
}

fn default_value(v: &prost_reflect::Value) -> Option<model::DefaultValue> {
    use model::DefaultValue as D;
    use prost_reflect::Value as V;
    Some(match v {
        V::Bool(b) => D::Bool(*b),
        V::I32(i) => D::Int((*i).into()),
        V::I64(i) => D::Int((*i).into()),
        V::U32(i) => D::Int((*i).into()),
        V::U64(i) => D::Int((*i).into()),
        V::F32(f) => D::Float((*f).into()),
        V::F64(f) => D::Float(*f),
        V::String(s) => D::Str(s.clone()),
        V::Bytes(b) => D::Bytes(b.to_vec()),
        V::EnumNumber(n) => D::Int((*n).into()),
        _ => return None,
    })
}

/// The type of the field a nested index path (`address.city`) ends at, as
/// the derive's attribute writes it (`string`, `enum`, `reference`), if the
/// path reaches one; the model's check refuses the rest with a reason.
fn nested_kind(msg: &MessageDescriptor, path: &str) -> Option<String> {
    let (outer, inner) = path.split_once('.')?;
    let prost_reflect::Kind::Message(embedded) = msg.get_field_by_name(outer)?.kind() else { return None };
    let field = embedded.get_field_by_name(inner)?;
    Some(match field.kind() {
        prost_reflect::Kind::Enum(_) => "enum".to_owned(),
        prost_reflect::Kind::Message(m) if m.full_name() == "pbpersist.Ref" => "reference".to_owned(),
        prost_reflect::Kind::Message(m) => m.full_name().to_owned(),
        _ => scalar_name(&field),
    })
}

/// The `.proto` name of a scalar field's type.
fn scalar_name(field: &prost_reflect::FieldDescriptor) -> String {
    use prost_reflect::Kind;
    match field.kind() {
        Kind::Double => "double",
        Kind::Float => "float",
        Kind::Int32 => "int32",
        Kind::Int64 => "int64",
        Kind::Uint32 => "uint32",
        Kind::Uint64 => "uint64",
        Kind::Sint32 => "sint32",
        Kind::Sint64 => "sint64",
        Kind::Fixed32 => "fixed32",
        Kind::Fixed64 => "fixed64",
        Kind::Sfixed32 => "sfixed32",
        Kind::Sfixed64 => "sfixed64",
        Kind::Bool => "bool",
        Kind::String => "string",
        Kind::Bytes => "bytes",
        Kind::Message(_) | Kind::Enum(_) => "message",
    }
    .to_owned()
}
