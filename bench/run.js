#!/usr/bin/env node
// `npm run bench` entry point (package.json): runs the IPC benchmark, bench/ipc.js.
// Arguments are passed through: npm run bench -- --quick --svg chart.svg
import { main } from './ipc.js';

process.exitCode = await main(process.argv.slice(2));
