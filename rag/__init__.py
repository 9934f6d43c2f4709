"""rag-news: local Q&A over a folder of news articles, every claim cited to its sentences."""
