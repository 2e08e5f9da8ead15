// The benchmark's Node agent: the callback the Node adapter loads.
export default (payload) => payload
