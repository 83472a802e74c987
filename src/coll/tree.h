/* The double binary tree's shape, exposed for tests and tools (see tree.c). */
#ifndef TT_COLL_TREE_H
#define TT_COLL_TREE_H

/*
 * Links of position @p p (1..n) in the in-order binary tree over n
 * positions: parent, left and right child, 0 where there is none.
 */
void tt_btree_links(int n, int p, int *parent_p, int *left_p, int *right_p);

/* Tree position (1..n) of ring index @p index (0..n-1) in tree @p tree (0 or 1). */
int tt_btree_position(int n, int tree, int index);

#endif
