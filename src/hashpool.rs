//! Blocking threads for SHA1, reading files through their mappings:
//! hashing a file's pieces to share it or to re-check a `.part` on resume,
//! and verifying each downloaded piece (its blocks are already in the
//! `.part` file, written as they arrived). Results come back over a
//! channel, and the reactor is woken through its `mio::Waker`; hashing
//! never runs on its thread.

use crate::engine::Job as EngineJob;
use crate::storage::Content;
use log::warn;
use mio::Waker;
use sha1::{Digest, Sha1};
use std::io;
use std::ops::Range;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// An engine job with the share it names, opened (one file or a tree,
/// read through its mappings).
pub struct Job {
    pub job: crate::engine::Job,
    pub content: Arc<Content>,
}

/// What a finished job reports: the engine's own type, so results go
/// back to it unchanged.
pub use crate::engine::JobDone as Done;

pub struct HashPool {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    threads: Vec<JoinHandle<()>>,
    /// Jobs submitted and not yet received back.
    queued: usize,
}

impl HashPool {
    pub fn new(threads: usize, waker: Arc<Waker>) -> io::Result<HashPool> {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let mut handles = Vec::new();
        for n in 0..threads.max(1) {
            let jobs = jobs_rx.clone();
            let done = done_tx.clone();
            let waker = waker.clone();
            let handle = std::thread::Builder::new()
                .name(format!("sta-hash-{n}"))
                .spawn(move || worker(&jobs, &done, &waker))?;
            handles.push(handle);
        }
        Ok(HashPool {
            jobs: Some(jobs_tx),
            done: done_rx,
            threads: handles,
            queued: 0,
        })
    }

    pub fn submit(&mut self, job: Job) {
        match &self.jobs {
            Some(jobs) if jobs.send(job).is_ok() => self.queued += 1,
            _ => warn!("hash pool is gone; job dropped"),
        }
    }

    /// The next finished job, if any.
    pub fn try_recv(&mut self) -> Option<Done> {
        let done = self.done.try_recv().ok()?;
        self.queued = self.queued.saturating_sub(1);
        Some(done)
    }

    /// Jobs waiting for a thread or running.
    pub fn queued(&self) -> usize {
        self.queued
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        // Closing the job channel ends every worker after its current job.
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>, done: &Sender<Done>, waker: &Waker) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else {
            return;
        };
        let Job { job, content } = job;
        let map = &*content;
        let result = match job {
            EngineJob::Allocate { tag, .. } => Done::Allocated {
                tag,
                result: content.allocate(),
            },
            EngineJob::Hash {
                tag,
                length,
                piece_length,
                pieces,
                ..
            } => Done::Hashed {
                tag,
                hashes: hash_pieces(map, length, piece_length, pieces.clone()),
                pieces,
            },
            EngineJob::Verify {
                tag,
                piece,
                expected,
                offset,
                length,
                ..
            } => Done::Verified {
                tag,
                piece,
                result: hash(map, offset, length).map(|h| h == expected),
            },
        };
        // Let go of the file before saying so: once a share's last hash
        // is in, the engine turns a tree's dict into its metadata in
        // place (`Content::hashed`), which takes the only holder.
        drop(content);
        if done.send(result).is_err() {
            return;
        }
        let _ = waker.wake();
    }
}

/// SHA1 of `length` bytes of `file` at `offset`, read from its mapping:
/// no copy, and a file shrinking meanwhile is an error, not a crash.
fn hash(content: &Content, offset: u64, length: u32) -> io::Result<[u8; 20]> {
    let mut h = Sha1::new();
    content.read(offset, length.into(), |bytes| h.update(bytes))?;
    Ok(h.finalize().into())
}

fn hash_pieces(
    file: &Content,
    length: u64,
    piece_length: u32,
    pieces: Range<u32>,
) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(pieces.len() * 20);
    let g = crate::meta::Geometry::new(piece_length, length);
    for piece in pieces {
        out.extend_from_slice(&hash(file, g.piece_offset(piece), g.piece_size(piece))?);
    }
    Ok(out)
}
