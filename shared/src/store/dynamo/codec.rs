//! Reading and writing attribute values.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::error::{Error, Result};

pub type Attributes = HashMap<String, AttributeValue>;

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn corrupt(name: &str) -> Error {
    Error::Store {
        message: format!("item attribute {name} is missing or malformed"),
        retryable: false,
    }
}

pub fn get_s<'a>(item: &'a Attributes, name: &str) -> Result<&'a str> {
    opt_s(item, name).ok_or_else(|| corrupt(name))
}

pub fn opt_s<'a>(item: &'a Attributes, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub fn get_n<T: FromStr>(item: &Attributes, name: &str) -> Result<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt(name))
}

pub fn get_parsed<T>(
    item: &Attributes,
    name: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T> {
    parse(get_s(item, name)?).ok_or_else(|| corrupt(name))
}

pub fn get_json<T: serde::de::DeserializeOwned>(item: &Attributes, name: &str) -> Result<T> {
    serde_json::from_str(get_s(item, name)?).map_err(|_| corrupt(name))
}

pub fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

pub fn values<const N: usize>(pairs: [(&str, AttributeValue); N]) -> Attributes {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}
