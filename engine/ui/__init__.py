"""Small helpers the Streamlit pages share: translations, formatting, the services container, UI state."""
