// Builds the web UI into ../httpapi/ui/dist, which the Go binary embeds:
//   dist/index.html          no-cache; names the hashed assets below
//   dist/assets/main-HASH.js  bundle (our modules + hls.js), immutable
//   dist/assets/main-HASH.css
// plus a .gz copy of each asset for clients that accept gzip.
// `node build.mjs --watch` rebuilds on change (reload the page by hand).
import * as esbuild from 'esbuild';
import { copyFile, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'httpapi', 'ui', 'dist');
const watch = process.argv.includes('--watch');

// Empties dist but keeps the committed placeholder that go:embed needs.
async function clean() {
  await mkdir(out, { recursive: true });
  for (const name of await readdir(out)) {
    if (name !== '.keep') await rm(join(out, name), { recursive: true, force: true });
  }
}

async function writeIndex(metafile) {
  const assets = {};
  for (const [path, info] of Object.entries(metafile.outputs)) {
    // hls.js, imported dynamically, is an entry point of its own: only
    // main's bundle and stylesheet go into the page.
    if (info.entryPoint && info.entryPoint.endsWith('src/main.js')) {
      assets.js = 'assets/' + basename(path);
      if (info.cssBundle) assets.css = 'assets/' + basename(info.cssBundle);
    }
  }
  if (!assets.js || !assets.css) throw new Error('build produced no js or css bundle');
  const html = (await readFile(join(here, 'index.html'), 'utf8'))
    .replaceAll('{{JS}}', assets.js)
    .replaceAll('{{CSS}}', assets.css);
  await writeFile(join(out, 'index.html'), html);
  for (const name of await readdir(join(out, 'assets'))) {
    if (name.endsWith('.js') || name.endsWith('.css')) {
      const data = await readFile(join(out, 'assets', name));
      await writeFile(join(out, 'assets', name + '.gz'), gzipSync(data, { level: 9 }));
    }
  }
  // hls.js is bundled: ship its licence with it.
  await copyFile(join(here, 'node_modules', 'hls.js', 'LICENSE'), join(out, 'assets', 'hls.js-LICENSE.txt'));
  console.log('ui: built', Object.values(assets).join(', '), 'into', out);
}

const options = {
  entryPoints: [join(here, 'src', 'main.js')],
  bundle: true,
  format: 'esm',
  target: ['es2020'],
  splitting: true,
  chunkNames: 'chunk-[hash]',
  minify: !watch,
  sourcemap: watch ? 'inline' : false,
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
};

await clean();
if (watch) {
  const ctx = await esbuild.context({
    ...options,
    plugins: [{
      name: 'index',
      setup(build) {
        build.onStart(clean);
        build.onEnd((r) => r.errors.length === 0 && writeIndex(r.metafile));
      },
    }],
  });
  await ctx.watch();
} else {
  const result = await esbuild.build(options);
  await writeIndex(result.metafile);
}
