// preinstall: stop `npm install` / `npm ci` on a Node.js older than the
// project needs, with one line saying so, instead of a stack trace at start.
// The fallback: .npmrc's engine-strict and package.json's devEngines stop npm
// before it downloads anything; this runs only when both are overridden
// (--force, --engine-strict=false), after the dependencies are installed.
// Plain CommonJS with nothing newer than ES5 plus process: it has to run on
// whatever old Node is found. The required major is read from package.json's
// engines (">=24"), so the two cannot disagree.
var engines = require('../package.json').engines.node;
var required = Number(/(\d+)/.exec(engines)[1]);
var found = process.versions.node;
if (Number(found.split('.')[0]) < required) {
  process.stderr.write(
    'brokerage-credentials-api needs Node.js ' + required + ' or newer (package.json engines: "' + engines + '"); ' +
      'this is Node.js ' + found + ' (' + process.execPath + '). Install Node.js ' + required + ' (see .nvmrc) and run the install again.\n',
  );
  process.exit(1);
}
