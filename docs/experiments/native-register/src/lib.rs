//! The floor of a native engine (README.md): register objects in a Rust map, a batch of
//! `put`s applied as the benchmark's `register` machine applies them. An experiment only.
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use std::collections::{HashMap, VecDeque};

struct Rec { version: u64, updated: u64, value: String, history: VecDeque<(u64, u64, String)> }

#[pyclass]
struct Store { objects: HashMap<String, Rec>, index: u64 }

#[pymethods]
impl Store {
    #[new]
    fn new() -> Self { Store { objects: HashMap::new(), index: 0 } }

    fn create(&mut self, id: String) { self.objects.insert(id, Rec { version: 1, updated: 0, value: String::new(), history: VecDeque::new() }); }

    /// ops: list of (id, value); applies each as a register `put` (value: string <= 256 chars,
    /// object must exist), version + 1, history bounded at 10; returns the versions.
    fn put_batch(&mut self, ops: &PyList, at_ms: u64) -> PyResult<Vec<u64>> {
        self.index += 1;
        let mut out = Vec::with_capacity(ops.len());
        for op in ops.iter() {
            let t: &PyTuple = op.downcast()?;
            let id: &str = t.get_item(0)?.extract()?;
            let value: &str = t.get_item(1)?.extract()?;
            if value.chars().count() > 256 { return Err(pyo3::exceptions::PyValueError::new_err("too long")); }
            let rec = self.objects.get_mut(id).ok_or_else(|| pyo3::exceptions::PyKeyError::new_err("no object"))?;
            rec.version += 1;
            rec.updated = at_ms;
            rec.value = value.to_owned();
            rec.history.push_back((self.index, rec.version, rec.value.clone()));
            if rec.history.len() > 10 { rec.history.pop_front(); }
            out.push(rec.version);
        }
        Ok(out)
    }
}

#[pymodule]
fn regspike(_py: Python, m: &PyModule) -> PyResult<()> { m.add_class::<Store>()?; Ok(()) }
