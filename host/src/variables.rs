//! `fermyon:spin/variables@2.0.0`, the one Spin interface the function imports, answered from
//! the manifest's component variables.

use std::collections::BTreeMap;
use std::sync::Arc;

wasmtime::component::bindgen!({
    inline: "
        package fermyon:spin@2.0.0;
        interface variables {
            variant error { invalid-name(string), undefined(string), provider(string), other(string) }
            get: func(name: string) -> result<string, error>;
        }
        world host { import variables; }
    ",
});

pub use fermyon::spin::variables::{Error, Host};

/// The variables of one component, shared by its instances.
#[derive(Clone, Default)]
pub struct Variables(pub Arc<BTreeMap<String, String>>);

impl Host for Variables {
    fn get(&mut self, name: String) -> Result<String, Error> {
        self.0.get(&name).cloned().ok_or(Error::Undefined(name))
    }
}
