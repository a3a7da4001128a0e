//! Shorter import names for the npm package: wasm-bindgen names each JavaScript import
//! `__wbg_NAME_HASH`, with sixteen hex digits that gzip cannot compress, once in the module's
//! import section and once in the JS glue. Dropping the hash (keeping a number where two
//! imports share a NAME, such as the several `new`s) takes about 2.1 KiB off the gzipped
//! package. The names are only the contract between the module and its own glue, so both are
//! rewritten together, right after `wasm-bindgen` wrote them.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{bail, Context as _, Result};

/// The prefix of wasm-bindgen's generated import names.
const PREFIX: &str = "__wbg_";

/// Renames the hashed imports of the module `wasm`, and every mention of them in the glue
/// files `glue` (JavaScript and TypeScript declarations, of whichever wasm-bindgen target).
pub(crate) fn shorten(wasm: &Path, glue: &[&Path]) -> Result<()> {
    let module = fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let names = short_names(&import_names(&module)?);
    fs::write(wasm, rename_imports(&module, &names)?)?;
    for file in glue {
        let text =
            fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        fs::write(file, rename_identifiers(&text, &names))?;
    }
    Ok(())
}

/// `__wbg_NAME_0123456789abcdef` -> `__wbg_NAME`, numbered (`__wbg_NAME_1`, ...) when NAME is
/// shared; names without a hash are left alone.
fn short_names(imports: &[String]) -> BTreeMap<String, String> {
    let mut by_base: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for name in imports {
        if let Some(base) = without_hash(name) {
            by_base.entry(base).or_default().push(name);
        }
    }
    let taken: Vec<&str> = imports.iter().map(String::as_str).collect();
    let mut map = BTreeMap::new();
    for (base, names) in by_base {
        for (i, name) in names.iter().enumerate() {
            let mut short = if i == 0 {
                base.to_owned()
            } else {
                format!("{base}_{i}")
            };
            // Never collide with an import that keeps its name.
            while taken.contains(&short.as_str()) && short != *name {
                short.push('_');
            }
            map.insert((*name).to_owned(), short);
        }
    }
    map
}

/// The name without its `_HASH` suffix, if it is a hashed wasm-bindgen import.
fn without_hash(name: &str) -> Option<&str> {
    let (base, hash) = name.rsplit_once('_')?;
    let hashed = hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    (name.starts_with(PREFIX) && base.len() > PREFIX.len() && hashed).then_some(base)
}

/// Replaces whole identifiers (`[A-Za-z0-9_$]` runs) found in `names`.
fn rename_identifiers(text: &str, names: &BTreeMap<String, String>) -> String {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_ident) {
        out.push_str(&rest[..start]);
        let word = &rest[start..];
        let end = word.find(|c: char| !is_ident(c)).unwrap_or(word.len());
        let ident = &word[..end];
        out.push_str(names.get(ident).map_or(ident, String::as_str));
        rest = &word[end..];
    }
    out.push_str(rest);
    out
}

// ------------------------------------------------------------------ the module's import section

const IMPORT_SECTION: u8 = 2;

/// The field names of the module's imports, in order.
fn import_names(module: &[u8]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    if let Some((_, payload)) = sections(module)?.find(|(id, _)| *id == IMPORT_SECTION) {
        for import in imports(payload)? {
            names.push(import.field.to_owned());
        }
    }
    Ok(names)
}

/// The module with its import fields renamed through `names`; every other byte is copied.
fn rename_imports(module: &[u8], names: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let mut out = module[..8].to_vec();
    for (id, payload) in sections(module)? {
        let payload = if id == IMPORT_SECTION {
            let list = imports(payload)?;
            let mut new = Vec::new();
            write_leb(&mut new, list.len() as u32);
            for import in list {
                write_name(&mut new, import.module);
                write_name(
                    &mut new,
                    names.get(import.field).map_or(import.field, String::as_str),
                );
                new.extend_from_slice(import.desc);
            }
            new
        } else {
            payload.to_vec()
        };
        out.push(id);
        write_leb(&mut out, payload.len() as u32);
        out.extend_from_slice(&payload);
    }
    Ok(out)
}

struct Import<'a> {
    module: &'a str,
    field: &'a str,
    /// The import's kind and type, copied as they are.
    desc: &'a [u8],
}

/// The module's sections as `(id, payload)`, after checking the header.
fn sections(module: &[u8]) -> Result<impl Iterator<Item = (u8, &[u8])>> {
    if module.len() < 8 || &module[..4] != b"\0asm" || module[4..8] != [1, 0, 0, 0] {
        bail!("not a WebAssembly 1.0 module");
    }
    let mut r = Reader {
        bytes: module,
        pos: 8,
    };
    let mut list = Vec::new();
    while r.pos < module.len() {
        let id = r.byte()?;
        let len = r.leb()? as usize;
        list.push((id, r.take(len)?));
    }
    Ok(list.into_iter())
}

fn imports(payload: &[u8]) -> Result<Vec<Import<'_>>> {
    let mut r = Reader {
        bytes: payload,
        pos: 0,
    };
    let count = r.leb()?;
    let mut list = Vec::new();
    for _ in 0..count {
        let module = r.name()?;
        let field = r.name()?;
        let start = r.pos;
        match r.byte()? {
            // A function or a tag (attribute, then type index).
            0x00 => drop(r.leb()?),
            0x04 => {
                r.byte()?;
                r.leb()?;
            }
            // A table: its reference type, then limits.
            0x01 => {
                r.byte()?;
                r.limits()?;
            }
            0x02 => r.limits()?,
            // A global: value type and mutability.
            0x03 => drop(r.take(2)?),
            kind => bail!("unknown import kind {kind:#04x}"),
        }
        list.push(Import {
            module,
            field,
            desc: &payload[start..r.pos],
        });
    }
    Ok(list)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            bail!("the module ends inside a section");
        };
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn leb(&mut self) -> Result<u32> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let b = self.byte()?;
            value |= u32::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        bail!("a LEB128 integer longer than 5 bytes")
    }

    fn name(&mut self) -> Result<&'a str> {
        let len = self.leb()? as usize;
        std::str::from_utf8(self.take(len)?).context("an import name is not UTF-8")
    }

    /// Table and memory limits: flags, minimum, and a maximum when flag bit 0 is set.
    fn limits(&mut self) -> Result<()> {
        let flags = self.byte()?;
        self.leb()?;
        if flags & 1 != 0 {
            self.leb()?;
        }
        Ok(())
    }
}

fn write_leb(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let b = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn write_name(out: &mut Vec<u8>, name: &str) {
    write_leb(out, name.len() as u32);
    out.extend_from_slice(name.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module_with_imports(fields: &[&str]) -> Vec<u8> {
        let mut payload = Vec::new();
        write_leb(&mut payload, fields.len() as u32 + 1);
        for field in fields {
            write_name(&mut payload, "./x_bg.js");
            write_name(&mut payload, field);
            payload.extend_from_slice(&[0x00, 0x00]);
        }
        // A memory import with a maximum, to exercise the limits.
        write_name(&mut payload, "env");
        write_name(&mut payload, "memory");
        payload.extend_from_slice(&[0x02, 0x01, 0x11, 0x80, 0x01]);
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        // A type section before and a custom section after, copied unchanged.
        module.extend_from_slice(&[0x01, 0x04, 0x01, 0x60, 0x00, 0x00]);
        module.push(IMPORT_SECTION);
        write_leb(&mut module, payload.len() as u32);
        module.extend_from_slice(&payload);
        module.extend_from_slice(&[0x00, 0x03, 0x01, b'c', 0x07]);
        module
    }

    #[test]
    fn drops_the_hashes_and_numbers_shared_names() {
        let fields = [
            "__wbg_new_13de428334042d26",
            "__wbg_new_37eb45aaf5eeb820",
            "__wbg_call_a410eb4b59ed5965",
            "__wbindgen_init_externref_table",
            "__wbg_mqttclient_new",
        ];
        let names = short_names(&fields.map(str::to_owned));
        assert_eq!(names["__wbg_new_13de428334042d26"], "__wbg_new");
        assert_eq!(names["__wbg_new_37eb45aaf5eeb820"], "__wbg_new_1");
        assert_eq!(names["__wbg_call_a410eb4b59ed5965"], "__wbg_call");
        assert_eq!(names.len(), 3, "names without a hash are kept: {names:?}");

        let module = module_with_imports(&fields);
        let renamed = rename_imports(&module, &names).unwrap();
        let after = import_names(&renamed).unwrap();
        assert_eq!(
            after,
            [
                "__wbg_new",
                "__wbg_new_1",
                "__wbg_call",
                "__wbindgen_init_externref_table",
                "__wbg_mqttclient_new",
                "memory"
            ]
        );
        // Renaming back gives the original bytes: nothing else was touched.
        let back: BTreeMap<_, _> = names.iter().map(|(k, v)| (v.clone(), k.clone())).collect();
        assert_eq!(rename_imports(&renamed, &back).unwrap(), module);
    }

    #[test]
    fn renames_whole_identifiers_only() {
        let names = BTreeMap::from([(
            "__wbg_new_13de428334042d26".to_owned(),
            "__wbg_new".to_owned(),
        )]);
        let js = "x.__wbg_new_13de428334042d26 = 1; __wbg_new_13de428334042d26x; \
                  '__wbg_new_13de428334042d26'";
        assert_eq!(
            rename_identifiers(js, &names),
            "x.__wbg_new = 1; __wbg_new_13de428334042d26x; '__wbg_new'"
        );
    }
}
