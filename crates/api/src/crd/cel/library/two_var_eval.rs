//! The functions the lowered two-variable comprehensions call
//! (`two_var.rs`): `@pairs(range)`, and the map `transformMap` /
//! `transformMapEntry` build with cel-go's `@mapInsert`, failing as cel-go
//! fails on a key the map already has.

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::types::{CelInt, CelList, CelMap, CelMapKey, DYN_TYPE, MAP_TYPE};
use cel::common::value::{CowVal, Val};
use cel::objects::{Key, Map};
use cel::{Env, ExecutionError, Value};
use parking_lot::Mutex;

use super::two_var::MAP_INSERT;
use super::{Args, Ret, arg, custom, fail, library_type, owned};

/// `@pairs(range)`: a list's `[index, element]`s, a map's `[key, value]`s.
pub(super) const PAIRS: &str = "@pairs";
/// `@mapBuild()`: a new, empty map under construction.
pub(super) const BUILD: &str = "@mapBuild";
/// `@mapBuilt(m)`: the map constructed.
pub(super) const BUILT: &str = "@mapBuilt";

/// A map under construction. The comprehension's accumulator holds copies of
/// one handle, and each `@mapInsert` adds to the map they share, in place;
/// only the loop's own step and result can read the accumulator.
#[derive(Debug, Clone, Default)]
pub(super) struct MapBuilder(Arc<Mutex<HashMap<Key, Value>>>);

impl PartialEq for MapBuilder {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

library_type!(MapBuilder, MAP_BUILDER, "k8rs.MapBuilder");

pub(super) fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_type(MapBuilder::TYPE)?;
    env.add_overload(PAIRS, "two_var_pairs", vec![DYN_TYPE], pairs)?;
    env.add_overload(BUILD, "map_build", vec![], build)?;
    env.add_overload(BUILT, "map_built", vec![MapBuilder::TYPE], built)?;
    let key_value = vec![MapBuilder::TYPE, DYN_TYPE, DYN_TYPE];
    env.add_overload(MAP_INSERT, "map_insert_key_value", key_value, insert_entry)?;
    let entries = vec![MapBuilder::TYPE, MAP_TYPE];
    env.add_overload(MAP_INSERT, "map_insert_map", entries, insert_map)?;
    Ok(())
}

fn pairs<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let range = args
        .first()
        .ok_or(ExecutionError::MissingArgumentOrTarget)?;
    let pair = |k: Box<dyn Val + 'v>, v: Box<dyn Val + 'v>| -> Box<dyn Val + 'v> {
        Box::new(CelList::from(vec![k, v]))
    };
    let out: Vec<Box<dyn Val + 'v>> = if let Some(l) = range.downcast_ref::<CelList>() {
        let index = |i: usize| Box::new(CelInt::from(i as i64)) as Box<dyn Val + 'v>;
        let items = l.inner().iter().enumerate();
        items.map(|(i, x)| pair(index(i), x.clone())).collect()
    } else if let Some(m) = range.downcast_ref::<CelMap>() {
        let entries = m.inner().iter();
        entries
            .map(|(k, x)| pair(k.inner().clone_as_boxed(), x.clone()))
            .collect()
    } else {
        return Err(ExecutionError::UnexpectedType {
            got: range.get_type().name().to_owned(),
            want: "iterable".to_owned(),
        });
    };
    Ok(CowVal::owned(CelList::from(out)))
}

fn build<'b, 'v>(_: Args<'b, 'v>) -> Ret<'b, 'v> {
    custom(MapBuilder::default())
}

fn built<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let map = std::mem::take(&mut *arg::<MapBuilder>(&args, 0)?.0.lock());
    owned(Value::Map(Map { map: Arc::new(map) }))
}

/// Adds `entries` to the map of `args[0]`, each key new to it; returns the
/// map's handle.
fn insert<'b, 'v, 'a>(
    args: &Args<'b, 'v>,
    entries: impl IntoIterator<Item = (&'a (dyn Val + 'v), &'a (dyn Val + 'v))>,
) -> Ret<'b, 'v>
where
    'v: 'a,
{
    let builder = arg::<MapBuilder>(args, 0)?;
    let mut map = builder.0.lock();
    for (k, v) in entries {
        let key = Key::from(CelMapKey::try_from(CowVal::Borrowed(k))?);
        if map.contains_key(&key) {
            let shown = match &key {
                Key::String(s) => s.to_string(),
                Key::Int(i) => i.to_string(),
                Key::Uint(u) => u.to_string(),
                Key::Bool(b) => b.to_string(),
            };
            return Err(fail(format!("insert failed: key {shown} already exists")));
        }
        map.insert(key, Value::try_from(v)?);
    }
    custom(builder.clone())
}

fn insert_entry<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    match &args[..] {
        [_, k, v] => insert(&args, [(k.as_ref(), v.as_ref())]),
        _ => Err(ExecutionError::MissingArgumentOrTarget),
    }
}

fn insert_map<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let update = args.get(1).ok_or(ExecutionError::MissingArgumentOrTarget)?;
    let update = update
        .downcast_ref::<CelMap>()
        .ok_or_else(|| ExecutionError::UnexpectedType {
            got: update.get_type().name().to_owned(),
            want: "map".to_owned(),
        })?;
    insert(&args, update.inner().iter().map(|(k, v)| (k.inner(), &**v)))
}
