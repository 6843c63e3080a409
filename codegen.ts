// GraphQL Code Generator configuration for the typed SDK; the operations and
// outputs arrive with the clients issue.
const config = { schema: 'schema.graphql', generates: {} };

export default config;
