//! Test guest: reads a file and opens a socket, which no workflow may do.
//! weft must refuse to deploy it, naming both imports.

use weft_sdk::prelude::*;

fn forbidden(_ctx: &Ctx, path: String) -> Result<usize, Failure> {
    let secrets = std::fs::read(&path).map_err(|e| Failure::new(e.to_string()))?;
    let conn =
        std::net::TcpStream::connect("127.0.0.1:9").map_err(|e| Failure::new(e.to_string()))?;
    drop(conn);
    Ok(secrets.len())
}

weft_sdk::workflow!(forbidden);
